/* Checksums for binary files: zlib's CRC-32, since libpng already brings zlib along. */
#include "esmeta/core.h"

#include <zlib.h>

uint32_t esm_crc32(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    /* zlib takes uInt lengths; feed large buffers in pieces. */
    while (len > 0) {
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return crc;
}

uint32_t esm_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
    _Static_assert(sizeof(z_off_t) >= 8, "caches over 2 GiB need a 64-bit z_off_t");
    return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}
