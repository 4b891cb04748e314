/* common/vec.c: the growth of TW_VEC arrays. */
#include "common/vec.h"

#include <stdint.h>

tw_status tw__vec_reserve(void *vp, size_t *cap, size_t n, size_t more, size_t elem)
{
    if (more <= *cap - n)
        return TW_OK;
    if (more > SIZE_MAX / elem - n)
        return TW_ENOMEM;
    size_t need = n + more, c = *cap ? *cap : 16;
    while (c < need)
        c = c > SIZE_MAX / elem / 2 ? need : c * 2;
    void *old;
    memcpy(&old, vp, sizeof old);          /* *vp is a T *: same representation as void * here */
    void *p = realloc(old, c * elem);
    if (!p)
        return TW_ENOMEM;
    memcpy(vp, &p, sizeof p);
    *cap = c;
    return TW_OK;
}
