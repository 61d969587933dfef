/*
 * Shared by the fuzz targets: the libFuzzer entry points, and the archive
 * snapshot the protocol targets answer from (the shipped content/).
 */
#ifndef SERAI_FUZZ_H
#define SERAI_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

/* Loaded once, then shared by every input. */
const struct snapshot *fuzz_snapshot(void);
const struct archive_opts *fuzz_opts(void);

#endif
