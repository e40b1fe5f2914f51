/*
 * api_int.h - inside the platform API client: the JSON it writes and reads without building
 * a jansson tree (api_json.c). Private to src/wechat.
 */
#ifndef WX_WECHAT_API_INT_H
#define WX_WECHAT_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wechat/wechat.h"

/*
 * Message bodies are written straight into their call: building a jansson tree and dumping it
 * took as long as the rest of a call's own work. The text is, byte for byte, what
 * json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) made of the same document: keys in the order
 * written, no spaces, '"', '\' and the control characters escaped (\b \f \n \r \t, the others
 * \u00XX), everything past ASCII as \uXXXX (a surrogate pair past U+FFFF). A string that is not
 * UTF-8 is refused where jansson refused it: a template field is then left out (as
 * json_object_set_new left it out), and so are a template's url and client_msg_id; any other
 * string fails the call.
 */

/*
 * A JSON text being written into out, which has room for it: the caller sizes out with
 * api_jw_bound first. bad is set, and writing stops, at a string that is not UTF-8.
 */
struct jw {
    char *out;
    size_t len; /* bytes so far */
    size_t cap; /* bytes out has room for */
    bool bad;   /* a string was not UTF-8 */
};

/* What a call needs of the platform's answer. */
struct answer {
    long errcode;                              /* 0 when absent or not an integer */
    const char *errmsg;                        /* errmsg_len bytes: into the body or errmsg_buf */
    int errmsg_len;                            /* */
    char errmsg_buf[128];                      /* jansson's errmsg, cut (msg shows less) */
    uint64_t msgid;                            /* 0 when absent or not an integer */
    char media_id[WX_WECHAT_MEDIA_ID_MAX + 1]; /* "" when absent; cut */
    char openid[WX_OPENID_MAX + 1];            /* "" when absent; cut */
};

size_t api_jw_bound(const char *s);
bool api_utf8_ok(const char *s);
void api_jw_str(struct jw *w, const char *s);
void api_jw_member(struct jw *w, const char *key, const char *value);
bool api_answer_read(const char *body, size_t len, struct answer *a);

void api_jw_raw(struct jw *w, const char *s, size_t n);
#define JW_LIT(w, lit) api_jw_raw((w), (lit), sizeof(lit) - 1)

#endif
