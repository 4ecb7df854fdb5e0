/* Test driver: quantizes or dequantizes raw rows with the kernels' reference functions, so
 * that check_quants_oracle.py can compare them with llama.cpp's own numpy implementation.
 * usage: quants_main quantize TYPE ROW_LENGTH IN.f32 OUT.bin
 *        quants_main dequantize TYPE ROW_LENGTH IN.bin OUT.f32 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "kernels/kernels.h"

static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *data = end > 0 ? malloc((size_t)end) : NULL;
    if (data && fread(data, 1, (size_t)end, f) != (size_t)end) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = end > 0 ? (size_t)end : 0;
    return data;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s quantize|dequantize TYPE ROW_LENGTH IN OUT\n", argv[0]);
        return 2;
    }
    lb_type type;
    int64_t row = atoll(argv[3]);
    const lb_kernel_type *k = NULL;
    uint64_t row_bytes = 0;
    if (lb_type_from_name(argv[2], &type) != LB_OK || !(k = lb_kernels_type(type)) ||
        !lb_type_row_bytes(type, row, &row_bytes) || row <= 0) {
        fprintf(stderr, "bad type or row length: %s %s\n", argv[2], argv[3]);
        return 2;
    }
    size_t in_size;
    unsigned char *in = read_file(argv[4], &in_size);
    if (!in) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        return 1;
    }
    bool quantize = strcmp(argv[1], "quantize") == 0;
    size_t in_row = quantize ? (size_t)row * sizeof(float) : (size_t)row_bytes;
    size_t out_row = quantize ? (size_t)row_bytes : (size_t)row * sizeof(float);
    size_t rows = in_size / in_row;
    unsigned char *out = malloc(rows * out_row + 1);
    if (!out || rows * in_row != in_size) {
        fprintf(stderr, "input size %zu is not a whole number of rows\n", in_size);
        return 1;
    }
    for (size_t r = 0; r < rows; r++) {
        if (quantize)
            k->quantize_row((const float *)(in + r * in_row), out + r * out_row, row, NULL);
        else
            k->dequantize_row(in + r * in_row, (float *)(out + r * out_row), row);
    }
    FILE *f = fopen(argv[5], "wb");
    if (!f || fwrite(out, 1, rows * out_row, f) != rows * out_row || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", argv[5]);
        return 1;
    }
    free(in);
    free(out);
    return 0;
}
