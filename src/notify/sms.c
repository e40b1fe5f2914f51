/*
 * sms.c - the SMS gateway client: one HTTP POST of JSON per message.
 *
 * Gateways differ in their field names, so the body is a template from configuration (sms.body)
 * with {mobile}, {text} and {ref} inside JSON strings; the values go in JSON-escaped. {ref} is
 * the send's idempotency reference ("<journal seq>-sms": an alert has one SMS recipient, the
 * holder), for gateways that drop repeats. The answer's status decides: 2xx accepted; 400, 413 and
 * 422 refused for good (the number or the text is wrong, and will stay wrong); anything else,
 * including 401/403/404 from a gateway set up wrong, is worth trying again, so such sends end up in
 * the dead-letter list, from where staff replay them once the gateway is fixed.
 */
#include "notify/notify_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fetch/fetch.h"
#include "util/alloc.h"

#define SMS_BODY_MAX     4096 /* a rendered body */
#define SMS_TEMPLATE_MAX 1024 /* sms.body */
#define SMS_AUTH_MAX     1024 /* sms.auth_header */

struct wx_sms_client {
    wx_fetch_t *fetch;
    char url[WX_FETCH_URL_MAX];
    char tmpl[SMS_TEMPLATE_MAX + 1];
    char auth[SMS_AUTH_MAX + 1];
    unsigned timeout_ms;
};

struct sms_call {
    wx_sms_cb cb;
    void *arg;
};

/* Appends s JSON-escaped (without quotes). false when out is full. */
static bool put_escaped(char *out, size_t cap, size_t *n, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        const char *piece = esc;
        size_t len;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            len = 2;
        } else if (*p < 0x20) {
            len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            piece = (const char *)p;
            len = 1;
        }
        if (*n + len >= cap) return false;
        memcpy(out + *n, piece, len);
        *n += len;
    }
    return true;
}

int sms_body_render(const char *tmpl, const char *mobile, const char *text, const char *ref,
                    char *out, size_t cap)
{
    static const struct {
        const char *name;
        size_t len;
    } holes[] = {{"{mobile}", 8}, {"{text}", 6}, {"{ref}", 5}};
    const char *values[] = {mobile, text, ref};
    size_t n = 0;
    if (cap == 0) return -1;
    for (const char *p = tmpl; *p != '\0';) {
        size_t h = 0;
        while (h < 3 && strncmp(p, holes[h].name, holes[h].len) != 0)
            h++;
        if (h < 3) {
            if (!put_escaped(out, cap, &n, values[h])) return -1;
            p += holes[h].len;
            continue;
        }
        if (n + 1 >= cap) return -1;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return (int)n;
}

/* The template must make JSON whatever the values, and carry the number and the text. */
static int check_template(const char *tmpl, char *err, size_t errlen)
{
    char body[SMS_BODY_MAX];
    if (strlen(tmpl) > SMS_TEMPLATE_MAX || strstr(tmpl, "{mobile}") == NULL ||
        strstr(tmpl, "{text}") == NULL) {
        snprintf(err, errlen,
                 "sms.body: a JSON template of at most %d bytes with {mobile} and "
                 "{text} (and {ref}) inside strings",
                 SMS_TEMPLATE_MAX);
        return -1;
    }
    json_error_t je;
    json_t *doc = NULL;
    if (sms_body_render(tmpl, "+8613800138000", "\"quoted\"\\\n", "1:sms:x", body, sizeof body) <
            0 ||
        (doc = json_loads(body, JSON_REJECT_DUPLICATES, &je)) == NULL) {
        snprintf(err, errlen, "sms.body: not JSON once filled in (put the {...} inside strings)");
        return -1;
    }
    json_decref(doc);
    return 0;
}

wx_sms_client_t *wx_sms_client_new(wx_fetch_t *fetch, const struct wx_sms_options *opt, char *err,
                                   size_t errlen)
{
    const char *auth = opt->auth_header != NULL ? opt->auth_header : "";
    if (opt->url == NULL || opt->url[0] == '\0' || strlen(opt->url) >= WX_FETCH_URL_MAX) {
        snprintf(err, errlen, "sms.url: an http:// or https:// URL");
        return NULL;
    }
    if (strlen(auth) > SMS_AUTH_MAX || (auth[0] != '\0' && strchr(auth, ':') == NULL) ||
        strpbrk(auth, "\r\n") != NULL) {
        snprintf(err, errlen, "sms.auth_header: \"Name: value\" on one line, at most %d bytes",
                 SMS_AUTH_MAX);
        return NULL;
    }
    if (check_template(opt->body_template, err, errlen) != 0) return NULL;
    wx_sms_client_t *c = wx_calloc(1, sizeof *c);
    c->fetch = fetch;
    snprintf(c->url, sizeof c->url, "%s", opt->url);
    snprintf(c->tmpl, sizeof c->tmpl, "%s", opt->body_template);
    snprintf(c->auth, sizeof c->auth, "%s", auth);
    c->timeout_ms = opt->timeout_ms;
    return c;
}

void wx_sms_client_free(wx_sms_client_t *c)
{
    free(c);
}

static enum wx_sms_result classify(long status)
{
    if (status >= 200 && status < 300) return WX_SMS_OK;
    if (status == 400 || status == 413 || status == 422) return WX_SMS_PERMANENT;
    return WX_SMS_RETRYABLE;
}

static void on_answer(const struct wx_fetch_response *resp, void *arg)
{
    struct sms_call *call = arg;
    char error[96] = "";
    enum wx_sms_result r = WX_SMS_RETRYABLE;
    if (resp->status == WX_FETCH_OK) {
        r = classify(resp->http_status);
        if (r != WX_SMS_OK)
            snprintf(error, sizeof error, "gateway answered HTTP %ld", resp->http_status);
    } else {
        snprintf(error, sizeof error, "gateway: %s", wx_fetch_status_name(resp->status));
    }
    call->cb(r, (int)resp->http_status, error, call->arg);
    free(call);
}

int wx_sms_client_send(wx_sms_client_t *c, const char *mobile, const char *text, const char *ref,
                       wx_sms_cb cb, void *arg)
{
    char body[SMS_BODY_MAX];
    int len = sms_body_render(c->tmpl, mobile, text, ref, body, sizeof body);
    if (len < 0) return -1;
    const char *headers[2] = {c->auth[0] != '\0' ? c->auth : NULL, NULL};
    struct wx_fetch_request req = {
        .method = "POST",
        .url = c->url,
        .headers = headers,
        .body = body,
        .body_len = (size_t)len,
        .content_type = "application/json; charset=utf-8",
        .timeout_ms = c->timeout_ms,
    };
    struct sms_call *call = wx_calloc(1, sizeof *call);
    call->cb = cb;
    call->arg = arg;
    if (wx_fetch_start(c->fetch, &req, on_answer, call) != 0) {
        free(call);
        return -1;
    }
    return 0;
}
