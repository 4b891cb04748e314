/* web/passwd.c: making the read-only login's password hash (`trailwatch dashboard hash-password`). */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "trailwatch/server.h"

tw_status tw_dashboard_hash_password(const char *password, char *out, size_t cap, tw_error *err)
{
    if (!password || !*password)
        return tw__err(err, TW_EINVAL, "the password is empty");
    if (strlen(password) > 1024)
        return tw__err(err, TW_ETOOBIG, "the password is longer than 1024 bytes");
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    /* yescrypt, the default of Debian's libxcrypt, at its default cost; a NULL random source makes
     * libxcrypt read the system's. */
    if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof salt))
        return tw__err(err, TW_ESYS, "cannot make a salt for the password hash");
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd)
        return tw__err(err, TW_ENOMEM, "out of memory");
    const char *h = crypt_r(password, salt, cd);
    tw_status rc = TW_OK;
    if (!h || h[0] == '*')
        rc = tw__err(err, TW_ESYS, "crypt(3) could not hash the password");
    else if (strlen(h) + 1 > cap)
        rc = tw__err(err, TW_ETOOBIG, "the hash does not fit the buffer");
    else
        memcpy(out, h, strlen(h) + 1);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return rc;
}
