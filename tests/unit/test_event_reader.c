/* Unit tests: the event reader on descriptors (tw_event_reader_fd): format detection that does not
 * depend on how read(2) splits the input, and strict JSON around the "Records" array. */
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "trailwatch/event.h"
#include "tw_test.h"

/* A descriptor whose reads return n bytes in pieces of `piece` bytes (0: all at once). */
static int feed_bytes(const char *text, size_t n, size_t piece)
{
    if (!piece) {
        int fd = memfd_create("reader", MFD_CLOEXEC);
        if (fd < 0 || write(fd, text, n) != (ssize_t)n || lseek(fd, 0, SEEK_SET) != 0)
            return -1;
        return fd;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    for (size_t off = 0; off < n; off += piece) {   /* small texts: the socket buffer holds them */
        size_t k = n - off < piece ? n - off : piece;
        if (send(sv[1], text + off, k, 0) != (ssize_t)k) {
            close(sv[0]);
            close(sv[1]);
            return -1;
        }
    }
    close(sv[1]);
    return sv[0];
}

static int feed(const char *text, size_t piece) { return feed_bytes(text, strlen(text), piece); }

/* Reads everything: the events joined by '|', then "!<code>" for each error; the format of the last
 * call in *fmt. */
static void read_all(const char *text, size_t piece, char *out, size_t cap, int *fmt)
{
    int fd = feed(text, piece);
    tw_event_reader *r = NULL;
    tw_error err;
    out[0] = '\0';
    if (fd < 0 || tw_event_reader_fd(fd, NULL, &r, &err) != TW_OK) {
        TW_FAIL_("cannot set up the reader");
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t o = 0;
    for (int i = 0; i < 100; i++) {
        const char *json;
        size_t len;
        tw_event_where w;
        tw_status rc = tw_event_reader_next(r, &json, &len, &w, &err);
        *fmt = (int)w.format;
        if (rc == TW_OK && !json)
            break;
        if (rc == TW_OK)
            o += (size_t)snprintf(out + o, cap - o, "%s%.*s", o ? "|" : "", (int)len, json);
        else
            o += (size_t)snprintf(out + o, cap - o, "!%d", (int)rc);
        if (o >= cap)
            break;
    }
    tw_event_reader_free(r);
    close(fd);
}

/* Found by fuzz_reader (tests/fuzz-regressions/fuzz_reader/format-depends-on-read-sizes): the format
 * was decided on the first 64 bytes read, so leading whitespace or short reads turned a CloudTrail
 * file into JSON lines. */
TW_TEST(format_does_not_depend_on_read_sizes)
{
    char text[512], got[512];
    snprintf(text, sizeof text, "{%80s\"Records\": [{\"a\":1},\n{\"b\":2}]}\n", "");
    static const size_t pieces[] = {0, 1, 2, 7, 64};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        int fmt = -1;
        read_all(text, pieces[i], got, sizeof got, &fmt);
        if (strcmp(got, "{\"a\":1}|{\"b\":2}") != 0 || fmt != TW_FORMAT_RECORDS)
            TW_FAIL_("pieces of %zu: format %d, events %s", pieces[i], fmt, got);
    }
    snprintf(text, sizeof text, "%100s[{\"a\":1}, 2]", "");
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        int fmt = -1;
        read_all(text, pieces[i], got, sizeof got, &fmt);
        if (strcmp(got, "{\"a\":1}|2") != 0 || fmt != TW_FORMAT_ARRAY)
            TW_FAIL_("pieces of %zu: format %d, events %s", pieces[i], fmt, got);
    }
    /* JSON lines still start at once, whatever the first line holds */
    int fmt = -1;
    read_all("{\"a\":1}\n{\"Records\":[]}\n", 1, got, sizeof got, &fmt);
    CHECK_EQ_STR(got, "{\"a\":1}|{\"Records\":[]}");
    CHECK_EQ_INT(fmt, TW_FORMAT_LINES);
}

/* Found by fuzz_reader (tests/fuzz-regressions/fuzz_reader/records-key-without-quote): a member
 * before "Records" was taken without its key's opening quote. */
TW_TEST(records_file_members_are_strict_json)
{
    char got[256];
    int fmt = -1;
    read_all("{\"Records\":1,xRecords\":[{\"a\":1}]}", 0, got, sizeof got, &fmt);
    CHECK_EQ_STR(got, "!3");
    read_all("{\"Records\":1,\"x\":{},\"Records\":[{\"a\":1}],\"y\":2}", 0, got, sizeof got, &fmt);
    CHECK_EQ_STR(got, "{\"a\":1}");
    CHECK_EQ_INT(fmt, TW_FORMAT_RECORDS);
}

/* Found by fuzz_reader (tests/fuzz-regressions/fuzz_reader/gzip-error-drops-decoded-bytes): when
 * one read decoded data and then met corrupt gzip (here: a bad CRC at the end), the data decoded
 * in that read was dropped, so up to 256 KB of events before the error were lost, more or fewer
 * depending on how read(2) split the input. */
TW_TEST(events_before_corrupt_gzip_are_read)
{
    enum { LINES = 3000 };
    char *text = malloc(LINES * 32);
    REQUIRE(text);
    size_t n = 0;
    for (int i = 0; i < LINES; i++)
        n += (size_t)sprintf(text + n, "{\"n\":%d}\n", i);
    z_stream z;
    memset(&z, 0, sizeof z);
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&z, (uLong)n);
    unsigned char *gz = malloc(cap);
    REQUIRE(gz);
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)n;
    z.next_out = gz;
    z.avail_out = (uInt)cap;
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    size_t len = cap - z.avail_out;
    deflateEnd(&z);
    gz[len - 8] ^= 0xff;   /* the CRC-32 of the trailer */
    static const size_t pieces[] = {0, 1000, 4093};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        int fd = feed_bytes((const char *)gz, len, pieces[p]);
        tw_event_reader *r = NULL;
        tw_error err;
        REQUIRE(fd >= 0 && tw_event_reader_fd(fd, NULL, &r, &err) == TW_OK);
        int events = 0, errors = 0;
        tw_status last = TW_OK;
        for (int i = 0; i < LINES + 10; i++) {
            const char *json;
            size_t jl;
            tw_event_where w;
            tw_status rc = tw_event_reader_next(r, &json, &jl, &w, &err);
            if (rc == TW_OK && !json)
                break;
            events += rc == TW_OK;
            errors += rc != TW_OK;
            last = rc;
        }
        if (events != LINES || errors != 1 || last != TW_EGZIP)
            TW_FAIL_("pieces of %zu: %d events, %d errors (last %d), expected %d, 1 (%d)", pieces[p], events,
                     errors, (int)last, LINES, (int)TW_EGZIP);
        tw_event_reader_free(r);
        close(fd);
    }
    free(gz);
    free(text);
}

TW_TEST_MAIN()
