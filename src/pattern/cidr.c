/* pattern/cidr.c: IPv4 and IPv6 prefixes ("10.0.0.0/8", "2001:db8::/32"). */
#include <arpa/inet.h>
#include <string.h>

#include "pattern/pattern_int.h"

/* Parses an address of either family into 16 bytes; returns 4, 6 or 0. */
static int parse_addr(const char *s, size_t len, uint8_t out[16])
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (memchr(buf, ':', len))
        return inet_pton(AF_INET6, buf, out) == 1 ? 6 : 0;
    return inet_pton(AF_INET, buf, out) == 1 ? 4 : 0;
}

void tw__cidr_mask(uint8_t *a, unsigned bits, unsigned total)
{
    for (unsigned i = 0; i < total / 8; i++) {
        unsigned have = bits > i * 8 ? bits - i * 8 : 0;
        if (have >= 8)
            continue;
        a[i] &= (uint8_t)(0xff00u >> have);
    }
}

const char *tw__cidr_parse(const char *s, size_t len, tw__matcher *m)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    int fam = parse_addr(s, alen, m->addr);
    if (!fam)
        return "\"cidr\" must be an IPv4 or IPv6 address with an optional /prefix-length";
    unsigned total = fam == 4 ? 32 : 128, bits = total;
    if (slash) {
        const char *p = slash + 1, *end = s + len;
        if (p == end || end - p > 3)
            return "\"cidr\" has an invalid prefix length";
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return "\"cidr\" has an invalid prefix length";
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > total)
            return fam == 4 ? "\"cidr\" prefix length must be 0..32 for IPv4"
                            : "\"cidr\" prefix length must be 0..128 for IPv6";
    }
    m->family = (uint8_t)fam;
    m->bits = (uint8_t)bits;
    tw__cidr_mask(m->addr, bits, total);
    return NULL;
}

int tw__value_ip(tw__value *v)
{
    if (!v->ip_family) {
        int fam = v->type == TW_JSON_STRING ? parse_addr(v->s, v->len, v->ip) : 0;
        v->ip_family = (uint8_t)(fam ? fam : 255);
    }
    return v->ip_family == 255 ? 0 : v->ip_family;
}

int tw__cidr_match(const tw__matcher *m, tw__value *v)
{
    int fam = tw__value_ip(v);
    if (fam != m->family)
        return 0;
    unsigned total = fam == 4 ? 32 : 128;
    uint8_t a[16];
    memcpy(a, v->ip, total / 8);
    tw__cidr_mask(a, m->bits, total);
    return memcmp(a, m->addr, total / 8) == 0;
}
