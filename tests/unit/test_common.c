/* Unit tests: common utilities: the typed vector (common/vec.h), tw_buf's sticky errors and printf. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/vec.h"
#include "tw_test.h"

typedef struct pair {
    int a;
    const char *b;
} pair;

TW_TEST(vector_pushes_adds_and_keeps_its_type)
{
    TW_VEC(pair) v = TW_VEC_INIT;
    for (int i = 0; i < 1000; i++)
        REQUIRE(TW_VEC_PUSH(&v, ((pair){i, "x"})) == TW_OK);
    CHECK_EQ_INT(v.n, 1000);
    CHECK(v.cap >= 1000 && v.cap < 2048);
    CHECK_EQ_INT(v.v[999].a, 999);
    pair *p = TW_VEC_ADD(&v);
    REQUIRE(p);
    CHECK(p->a == 0 && p->b == NULL);          /* added elements are zeroed */
    CHECK_EQ_INT(v.n, 1001);
    size_t cap = v.cap;
    CHECK_EQ_INT(TW_VEC_RESERVE(&v, cap - v.n), TW_OK);
    CHECK_EQ_INT(v.cap, cap);                   /* room enough: nothing moves */
    TW_VEC_FREE(&v);
    CHECK(v.v == NULL && v.n == 0 && v.cap == 0);
}

TW_TEST(vector_size_overflow_is_out_of_memory)
{
    TW_VEC(uint64_t) v = TW_VEC_INIT;
    REQUIRE(TW_VEC_PUSH(&v, 1) == TW_OK);
    CHECK_EQ_INT(TW_VEC_RESERVE(&v, SIZE_MAX / 4), TW_ENOMEM);
    CHECK_EQ_INT(TW_VEC_RESERVE(&v, SIZE_MAX), TW_ENOMEM);
    CHECK_EQ_INT(v.n, 1);                       /* unchanged */
    CHECK_EQ_INT(v.v[0], 1);
    TW_VEC_FREE(&v);
}

TW_TEST(buf_errors_are_sticky_until_reset)
{
    tw_buf b;
    tw__buf_init(&b, 8);
    CHECK_EQ_INT(tw__buf_puts(&b, "12345"), TW_OK);
    CHECK_EQ_INT(tw__buf_puts(&b, "6789"), TW_ETOOBIG);   /* past max: nothing of it written */
    CHECK_EQ_INT(tw_buf_error(&b), TW_ETOOBIG);
    CHECK_EQ_INT(tw__buf_putc(&b, 'x'), TW_ETOOBIG);      /* it would fit, but the error sticks */
    CHECK_EQ_INT(tw__buf_printf(&b, "%d", 1), TW_ETOOBIG);
    CHECK_EQ_STR(b.data, "12345");                       /* what was written before stays */
    tw_buf_reset(&b);
    CHECK_EQ_INT(tw_buf_error(&b), TW_OK);
    CHECK_EQ_INT(tw__buf_puts(&b, "abc"), TW_OK);
    CHECK_EQ_STR(b.data, "abc");
    tw__buf_free(&b);
    /* an empty buffer that failed still detaches to "" */
    tw_buf e;
    tw__buf_init(&e, 2);
    CHECK_EQ_INT(tw__buf_puts(&e, "toolong"), TW_ETOOBIG);
    size_t n = 9;
    char *s = tw__buf_detach(&e, &n);
    CHECK(s && s[0] == '\0' && n == 0);
    free(s);
}

/* printf formats into the free room when the text fits, and grows the buffer when it does not; a
 * text past max leaves the buffer as it was, in both cases. */
TW_TEST(buf_printf_fits_grows_and_respects_max)
{
    tw_buf b;
    tw__buf_init(&b, 0);
    CHECK_EQ_INT(tw__buf_printf(&b, "%s-%d", "ab", 1), TW_OK);      /* no room yet: grows */
    CHECK_EQ_STR(b.data, "ab-1");
    size_t cap = b.cap;
    CHECK_EQ_INT(tw__buf_printf(&b, "%c%d", 'x', 22), TW_OK);        /* fits in the room */
    CHECK_EQ_STR(b.data, "ab-1x22");
    CHECK_EQ_INT(b.cap, cap);
    char big[300];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(tw__buf_printf(&b, "[%s]", big), TW_OK);            /* longer than the room: grows */
    CHECK_EQ_INT(b.len, 7 + 301);
    CHECK(b.data[7] == '[' && b.data[8] == 'y' && b.data[307] == ']' && b.data[308] == '\0');
    tw__buf_free(&b);
    /* past max, with room enough allocated: nothing of it is kept, the NUL is where it was */
    tw__buf_init(&b, 10);
    CHECK_EQ_INT(tw__buf_puts(&b, "12345678"), TW_OK);
    CHECK(b.cap > 11);
    CHECK_EQ_INT(tw__buf_printf(&b, "%d", 123), TW_ETOOBIG);
    CHECK_EQ_STR(b.data, "12345678");
    CHECK_EQ_INT(b.len, 8);
    tw__buf_free(&b);
    /* past max, longer than the room */
    tw__buf_init(&b, 10);
    CHECK_EQ_INT(tw__buf_puts(&b, "1234"), TW_OK);
    CHECK_EQ_INT(tw__buf_printf(&b, "%s", big), TW_ETOOBIG);
    CHECK_EQ_STR(b.data, "1234");
    tw__buf_free(&b);
}

TW_TEST_MAIN()
