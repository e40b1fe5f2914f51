/*
 * menu.c - POST /cgi-bin/menu/create: the custom menu, checked against its documented limits
 * (vectors/wechat/README.md §5.4) and shown under the phone's chat.
 *
 * Limits: 1-3 buttons, 1-5 sub_buttons under a button that has them, no deeper nesting;
 * names 1-16 bytes (sub-buttons 1-60), keys 1-128 bytes, URLs 1-1024 bytes of http(s). Each
 * breach has its own code, one series for buttons (40016-40020, 40055) and one for
 * sub-buttons (40022-40027, 40054), as the platform answers. A valid menu replaces the old
 * one.
 */
#include "sandbox/sandbox_int.h"

#include <stdio.h>
#include <string.h>

#define BUTTONS_MAX     3
#define SUB_BUTTONS_MAX 5
#define NAME_MAX_TOP    16
#define NAME_MAX_SUB    60
#define KEY_MAX         128
#define MENU_URL_MAX    1024

/* The errcodes of one level: buttons or sub-buttons. */
struct level_codes {
    int size, type, name, key, url, domain;
    const char *what; /* "button" or "sub button", for errmsg */
    size_t name_max;
};

static const struct level_codes top = {40016, 40017, 40018,    40019,
                                       40020, 40055, "button", NAME_MAX_TOP};
static const struct level_codes sub = {40023, 40024, 40025,        40026,
                                       40027, 40054, "sub button", NAME_MAX_SUB};

/* What a leaf of each type must carry. */
enum needs { NEEDS_KEY, NEEDS_URL, NEEDS_MEDIA, NEEDS_MINIPROGRAM, NEEDS_ARTICLE };

static const struct {
    const char *type;
    enum needs needs;
} leaf_types[] = {
    {"click", NEEDS_KEY},
    {"scancode_push", NEEDS_KEY},
    {"scancode_waitmsg", NEEDS_KEY},
    {"pic_sysphoto", NEEDS_KEY},
    {"pic_photo_or_album", NEEDS_KEY},
    {"pic_weixin", NEEDS_KEY},
    {"location_select", NEEDS_KEY},
    {"view", NEEDS_URL},
    {"media_id", NEEDS_MEDIA},
    {"view_limited", NEEDS_MEDIA},
    {"miniprogram", NEEDS_MINIPROGRAM},
    {"article_id", NEEDS_ARTICLE},
    {"article_view_limited", NEEDS_ARTICLE},
};

/* A menu error: the code and its message. */
struct menu_error {
    int code;
    char msg[64];
};

static int fail(struct menu_error *e, int code, const char *fmt, const char *what)
{
    e->code = code;
    snprintf(e->msg, sizeof e->msg, fmt, what);
    return -1;
}

/* Length of a string member in bytes, or -1 when absent or not a string. */
static long member_len(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? (long)json_string_length(v) : -1;
}

static int check_url(const json_t *b, const struct level_codes *lc, struct menu_error *e)
{
    long n = member_len(b, "url");
    if (n <= 0 || n > MENU_URL_MAX) return fail(e, lc->url, "invalid %s url size", lc->what);
    const char *url = json_string_value(json_object_get(b, "url"));
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        return fail(e, lc->domain, "invalid %s url domain", lc->what);
    }
    return 0;
}

/* Checks a leaf button by its type. */
static int check_leaf(const json_t *b, const struct level_codes *lc, struct menu_error *e)
{
    const char *type = sb_json_str(b, "type");
    for (size_t i = 0; type != NULL && i < sizeof leaf_types / sizeof leaf_types[0]; i++) {
        if (strcmp(type, leaf_types[i].type) != 0) continue;
        long n;
        switch (leaf_types[i].needs) {
        case NEEDS_KEY:
            n = member_len(b, "key");
            return n > 0 && n <= KEY_MAX ? 0 : fail(e, lc->key, "invalid %s key size", lc->what);
        case NEEDS_URL:
            return check_url(b, lc, e);
        case NEEDS_MEDIA:
            return member_len(b, "media_id") > 0 ? 0 : fail(e, 40007, "invalid media_id%s", "");
        case NEEDS_MINIPROGRAM:
            if (member_len(b, "appid") <= 0 || member_len(b, "pagepath") <= 0) {
                return fail(e, 40166, "invalid appid%s", ""); /* the mini program's */
            }
            return check_url(b, lc, e);
        case NEEDS_ARTICLE:
            return member_len(b, "article_id") > 0 ? 0 : fail(e, 40007, "invalid media_id%s", "");
        }
    }
    return fail(e, lc->type, "invalid %s type", lc->what);
}

static int check_name(const json_t *b, const struct level_codes *lc, struct menu_error *e)
{
    long n = member_len(b, "name");
    const char *name = n > 0 ? json_string_value(json_object_get(b, "name")) : NULL;
    if (name == NULL || (size_t)n > lc->name_max || strlen(name) != (size_t)n ||
        !sb_is_text(name, (size_t)n)) {
        return fail(e, lc->name, "invalid %s name size", lc->what);
    }
    return 0;
}

/* A sub-button: a leaf with a name, nothing nested. */
static int check_sub(const json_t *b, struct menu_error *e)
{
    if (!json_is_object(b)) return fail(e, 47001, "data format error%s", "");
    if (json_object_get(b, "sub_button") != NULL) {
        return fail(e, 40022, "invalid sub button level%s", "");
    }
    return check_name(b, &sub, e) != 0 ? -1 : check_leaf(b, &sub, e);
}

static int check_button(const json_t *b, struct menu_error *e)
{
    if (!json_is_object(b)) return fail(e, 47001, "data format error%s", "");
    if (check_name(b, &top, e) != 0) return -1;
    const json_t *subs = json_object_get(b, "sub_button");
    if (json_is_array(subs) && json_array_size(subs) > 0) {
        if (json_array_size(subs) > SUB_BUTTONS_MAX) {
            return fail(e, sub.size, "invalid %s size", sub.what);
        }
        for (size_t i = 0; i < json_array_size(subs); i++) {
            if (check_sub(json_array_get(subs, i), e) != 0) return -1;
        }
        return 0;
    }
    return check_leaf(b, &top, e);
}

static int check_menu(const json_t *o, struct menu_error *e)
{
    const json_t *buttons = json_object_get(o, "button");
    if (!json_is_array(buttons) || json_array_size(buttons) == 0 ||
        json_array_size(buttons) > BUTTONS_MAX) {
        return fail(e, top.size, "invalid %s size", top.what);
    }
    for (size_t i = 0; i < json_array_size(buttons); i++) {
        if (check_button(json_array_get(buttons, i), e) != 0) return -1;
    }
    return 0;
}

void sb_menu_create_handler(struct wx_sandbox *sb, wx_http_req_t *req, const char *query)
{
    const enum sb_endpoint ep = SB_EP_MENU_CREATE;
    if (sb_api_begin(sb, req, ep, true, sb_menu_create_handler) ||
        !sb_api_token_ok(sb, req, ep, query)) {
        return;
    }
    json_t *o = sb_api_body(sb, req, ep, WX_SANDBOX_MENU_JSON_MAX);
    if (o == NULL) return;
    struct menu_error e = {0};
    if (check_menu(o, &e) != 0) {
        sb_api_error(sb, req, ep, e.code, e.msg);
        json_decref(o);
        return;
    }
    json_decref(sb->menu);
    sb->menu = json_pack("{s:O}", "button", json_object_get(o, "button"));
    json_decref(o);
    sb_bump(sb, &sb->menu_seq);
    sb_api_ok(req, NULL);
}
