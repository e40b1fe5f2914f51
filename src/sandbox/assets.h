/*
 * assets.h - private to src/sandbox: the page's files (the directory src/sandbox/page), embedded at
 * build time by scripts/embed.cmake into a generated C file, so the binary serves them with no
 * files beside it and the sources stay readable HTML, CSS and JavaScript.
 */
#ifndef WX_SANDBOX_ASSETS_H
#define WX_SANDBOX_ASSETS_H

#include <stddef.h>

struct sb_asset {
    const char *name;          /* file name: "index.html" */
    const unsigned char *data; /* its bytes */
    size_t len;
};

extern const struct sb_asset sb_assets[];
extern const size_t sb_asset_count;

#endif
