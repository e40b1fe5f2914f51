/*
 * xml.c - inbound message XML to struct wx_wechat_msg, with expat.
 *
 * Every byte of the body comes from the network (the platform, or anyone who can reach the
 * webhook before the signature is checked), so the parser is locked down: no DOCTYPE (and with
 * it no entity declarations, billion laughs or external entities: XXE has bitten WeChat SDKs
 * more than once), no processing instructions, a bounded depth and element count, and every
 * known field copied into its fixed-size slot of the struct or rejected when it does not fit.
 * Nothing is cut silently and nothing is allocated per field.
 *
 * The known fields are one table (name, kind, slot, cap); the handlers below are generic.
 */
#include "wechat/wechat.h"

#include <assert.h>
#include <expat.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Elements in one body. Real messages have fewer than 30 (compatible mode about doubles
 * that); the body limit alone would allow ~16,000 empty ones.
 */
#define XML_ELEMENTS_MAX 256

enum field_kind {
    F_TEXT,  /* copied as is */
    F_INT64, /* decimal digits into an int64_t; the text is not kept */
    F_U64,   /* decimal digits into a uint64_t; the text is kept too */
    F_REAL,  /* [-]digits[.digits] into a double; the text is kept too */
};

#define NO_SLOT ((size_t)-1)

struct field {
    const char *name;     /* element name, case-sensitive */
    enum field_kind kind; /* how the text is checked and converted */
    size_t text;          /* offset of the char[] slot in the struct, or NO_SLOT */
    size_t cap;           /* bytes the text may hold (the slot has one more, for the NUL) */
    size_t chars;         /* characters the text may hold; 0 when only bytes count */
    size_t num;           /* offset of the number (int64_t, uint64_t or double) */
};

#define M(member) offsetof(struct wx_wechat_msg, member)
#define TEXT(name, member, cap)                                                                    \
    {                                                                                              \
        name, F_TEXT, M(member), cap, 0, 0                                                         \
    }
#define CHARS(name, member, chars)                                                                 \
    {                                                                                              \
        name, F_TEXT, M(member), 4 * (chars), chars, 0                                             \
    }
#define U64(name, member, num)                                                                     \
    {                                                                                              \
        name, F_U64, M(member), WX_WECHAT_MSGID_MAX, 0, M(num)                                     \
    }
#define REAL(name, member, num)                                                                    \
    {                                                                                              \
        name, F_REAL, M(member), WX_WECHAT_NUMBER_MAX, 0, M(num)                                   \
    }

/* Indexes into FIELDS; the bit of a field in m->present is its index. */
enum field_index {
    FI_TO_USER,
    FI_FROM_USER,
    FI_CREATE_TIME,
    FI_MSG_TYPE,
    FI_MSG_ID,
    FI_CONTENT,
    FI_PIC_URL,
    FI_MEDIA_ID,
    FI_FORMAT,
    FI_RECOGNITION,
    FI_THUMB_MEDIA_ID,
    FI_LOCATION_X,
    FI_LOCATION_Y,
    FI_SCALE,
    FI_LABEL,
    FI_TITLE,
    FI_DESCRIPTION,
    FI_URL,
    FI_EVENT,
    FI_EVENT_KEY,
    FI_TICKET,
    FI_MENU_ID,
    FI_LATITUDE,
    FI_LONGITUDE,
    FI_PRECISION,
    FI_TEMPLATE_MSG_ID,
    FI_STATUS,
    FI_ENCRYPT,
    FI_COUNT,
};

static const struct field FIELDS[] = {
    [FI_TO_USER] = TEXT("ToUserName", to_user, WX_WECHAT_USER_MAX),
    [FI_FROM_USER] = TEXT("FromUserName", from_user, WX_WECHAT_USER_MAX),
    [FI_CREATE_TIME] = {"CreateTime", F_INT64, NO_SLOT, WX_WECHAT_NUMBER_MAX, 0, M(create_time)},
    [FI_MSG_TYPE] = TEXT("MsgType", msg_type_text, WX_WECHAT_WORD_MAX),
    [FI_MSG_ID] = U64("MsgId", msg_id_text, msg_id),
    [FI_CONTENT] = CHARS("Content", content, WX_WECHAT_CONTENT_CHARS),
    [FI_PIC_URL] = TEXT("PicUrl", pic_url, WX_WECHAT_URL_MAX),
    [FI_MEDIA_ID] = TEXT("MediaId", media_id, WX_WECHAT_MEDIA_ID_MAX),
    [FI_FORMAT] = TEXT("Format", format, WX_WECHAT_WORD_MAX),
    [FI_RECOGNITION] = CHARS("Recognition", recognition, WX_WECHAT_RECOGNITION_CHARS),
    [FI_THUMB_MEDIA_ID] = TEXT("ThumbMediaId", thumb_media_id, WX_WECHAT_MEDIA_ID_MAX),
    [FI_LOCATION_X] = REAL("Location_X", location_x_text, location_x),
    [FI_LOCATION_Y] = REAL("Location_Y", location_y_text, location_y),
    [FI_SCALE] = REAL("Scale", scale_text, scale),
    [FI_LABEL] = CHARS("Label", label, WX_WECHAT_LABEL_CHARS),
    [FI_TITLE] = CHARS("Title", title, WX_WECHAT_TITLE_CHARS),
    [FI_DESCRIPTION] = CHARS("Description", description, WX_WECHAT_DESCRIPTION_CHARS),
    [FI_URL] = TEXT("Url", url, WX_WECHAT_URL_MAX),
    [FI_EVENT] = TEXT("Event", event_text, WX_WECHAT_WORD_MAX),
    [FI_EVENT_KEY] = TEXT("EventKey", event_key, WX_WECHAT_EVENT_KEY_MAX),
    [FI_TICKET] = TEXT("Ticket", ticket, WX_WECHAT_TICKET_MAX),
    [FI_MENU_ID] = TEXT("MenuId", menu_id, WX_WECHAT_WORD_MAX),
    [FI_LATITUDE] = REAL("Latitude", latitude_text, latitude),
    [FI_LONGITUDE] = REAL("Longitude", longitude_text, longitude),
    [FI_PRECISION] = REAL("Precision", precision_text, precision),
    [FI_TEMPLATE_MSG_ID] = U64("MsgID", template_msg_id_text, template_msg_id),
    [FI_STATUS] = TEXT("Status", status, WX_WECHAT_WORD_MAX),
    [FI_ENCRYPT] = TEXT("Encrypt", encrypt, WX_WECHAT_ENCRYPT_MAX),
};

#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])
_Static_assert(NFIELDS == FI_COUNT, "one FIELDS entry per field_index");
_Static_assert(NFIELDS <= 64, "one bit per field in present");
#define HAS(m, fi) (((m)->present & ((uint64_t)1 << (fi))) != 0)

/* The parse in progress: the expat handlers' user data. */
struct parse {
    XML_Parser xp;
    struct wx_wechat_msg *m;
    unsigned depth;                         /* elements open, the root included */
    unsigned elements;                      /* elements started so far */
    const struct field *cur;                /* the known field whose text is being read, or NULL */
    char *text;                             /* where its text goes */
    size_t len, chars;                      /* bytes and characters of it so far */
    char scratch[WX_WECHAT_NUMBER_MAX + 1]; /* text of a number that keeps no text */
    bool parsing;                           /* inside XML_Parse: a failure stops expat */
    bool failed;                            /* the body is rejected: why holds the reason */
    char why[sizeof(struct wx_wechat_xml_error)];
};

static const char *const TYPE_NAMES[] = {
    [WX_WECHAT_MSG_UNKNOWN] = "",          [WX_WECHAT_MSG_TEXT] = "text",
    [WX_WECHAT_MSG_IMAGE] = "image",       [WX_WECHAT_MSG_VOICE] = "voice",
    [WX_WECHAT_MSG_VIDEO] = "video",       [WX_WECHAT_MSG_SHORTVIDEO] = "shortvideo",
    [WX_WECHAT_MSG_LOCATION] = "location", [WX_WECHAT_MSG_LINK] = "link",
    [WX_WECHAT_MSG_EVENT] = "event",
};

static const char *const EVENT_NAMES[] = {
    [WX_WECHAT_EVENT_NONE] = "",
    [WX_WECHAT_EVENT_UNKNOWN] = "",
    [WX_WECHAT_EVENT_SUBSCRIBE] = "subscribe",
    [WX_WECHAT_EVENT_UNSUBSCRIBE] = "unsubscribe",
    [WX_WECHAT_EVENT_SCAN] = "SCAN",
    [WX_WECHAT_EVENT_CLICK] = "CLICK",
    [WX_WECHAT_EVENT_VIEW] = "VIEW",
    [WX_WECHAT_EVENT_LOCATION] = "LOCATION",
    [WX_WECHAT_EVENT_TEMPLATESENDJOBFINISH] = "TEMPLATESENDJOBFINISH",
};

const char *wx_wechat_msg_type_name(enum wx_wechat_msg_type t)
{
    if ((size_t)t >= sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]) return "";
    return TYPE_NAMES[t];
}

const char *wx_wechat_event_name(enum wx_wechat_event e)
{
    if ((size_t)e >= sizeof EVENT_NAMES / sizeof EVENT_NAMES[0]) return "";
    return EVENT_NAMES[e];
}

static const struct field *field_lookup(const char *name)
{
    /* The first byte settles most names without a call: few fields share one. */
    for (size_t i = 0; i < NFIELDS; i++) {
        if (FIELDS[i].name[0] == name[0] && strcmp(FIELDS[i].name, name) == 0) return &FIELDS[i];
    }
    return NULL;
}

static uint64_t field_bit(const struct field *f)
{
    return (uint64_t)1 << (f - FIELDS);
}

bool wx_wechat_msg_has(const struct wx_wechat_msg *m, const char *name)
{
    assert(m != NULL && name != NULL);
    const struct field *f = field_lookup(name);
    return f != NULL && (m->present & field_bit(f)) != 0;
}

/* Records the first reason for rejecting the body and stops expat. */
__attribute__((format(printf, 2, 3))) static void fail(struct parse *p, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    if (p->parsing) XML_StopParser(p->xp, XML_FALSE);
}

/* ---- numbers ---------------------------------------------------------------------------- */

/* 1..20 decimal digits that fit a uint64_t; no sign, space or other character. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/*
 * [-]digits[.digits], then strtod. The grammar check keeps out what strtod would also take
 * (hex, inf, nan, exponents, spaces); a locale whose decimal point is not '.' makes strtod
 * stop early, which the end check turns into a rejection rather than a wrong value.
 */
static bool parse_real(const char *s, size_t len, double *out)
{
    size_t i = 0, digits = 0;
    if (i < len && s[i] == '-') i++;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (digits == 0) return false;
    if (i < len && s[i] == '.') {
        size_t frac = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == frac) return false;
    }
    if (i != len) return false;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != s + len || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* Converts the finished text of a numeric field; false when it is not a valid number. */
static bool field_number(const struct parse *p, const struct field *f)
{
    char *base = (char *)p->m;
    switch (f->kind) {
    case F_INT64: {
        uint64_t v = 0;
        if (!parse_u64(p->text, p->len, &v) || v > INT64_MAX) return false;
        *(int64_t *)(base + f->num) = (int64_t)v;
        return true;
    }
    case F_U64:
        return parse_u64(p->text, p->len, (uint64_t *)(base + f->num));
    case F_REAL:
        return parse_real(p->text, p->len, (double *)(base + f->num));
    case F_TEXT:
        break;
    }
    return true;
}

/* ---- handlers --------------------------------------------------------------------------- */

/* A child of <xml> that is a known field: start collecting its text into its slot. */
static void field_begin(struct parse *p, const struct field *f)
{
    if (p->m->present & field_bit(f)) {
        fail(p, "xml: duplicate %s", f->name);
        return;
    }
    p->m->present |= field_bit(f);
    p->cur = f;
    p->text = f->text == NO_SLOT ? p->scratch : (char *)p->m + f->text;
    p->len = 0;
    p->chars = 0;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    struct parse *p = ud;
    (void)atts; /* attributes carry nothing in this protocol */
    if (p->failed) return;
    p->depth++;
    p->elements++;
    if (p->elements > XML_ELEMENTS_MAX) {
        fail(p, "xml: more than %d elements", XML_ELEMENTS_MAX);
    } else if (p->depth > WX_WECHAT_XML_DEPTH_MAX) {
        fail(p, "xml: elements nested deeper than %d", WX_WECHAT_XML_DEPTH_MAX);
    } else if (p->depth == 1) {
        if (strcmp(name, "xml") != 0) fail(p, "xml: root element must be <xml>, not <%.40s>", name);
    } else if (p->cur != NULL) {
        fail(p, "xml: %s must hold text only", p->cur->name);
    } else if (p->depth == 2) {
        const struct field *f = field_lookup(name);
        if (f != NULL) field_begin(p, f);
    }
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    struct parse *p = ud;
    (void)name; /* expat has already matched it with its start tag */
    if (p->failed) return;
    assert(p->depth > 0);
    if (p->depth == 2 && p->cur != NULL) {
        const struct field *f = p->cur;
        p->text[p->len] = '\0';
        if (!field_number(p, f)) fail(p, "xml: %s is not a valid number", f->name);
        p->cur = NULL;
    }
    p->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    struct parse *p = ud;
    if (p->failed || p->cur == NULL) return; /* text between fields or in unknown ones */
    assert(len >= 0);
    const struct field *f = p->cur;
    size_t n = (size_t)len;
    if (f->chars != 0) { /* only character-capped fields count them */
        for (size_t i = 0; i < n; i++) {
            p->chars += ((unsigned char)s[i] & 0xc0) != 0x80; /* not a UTF-8 continuation byte */
        }
    }
    if (f->chars != 0 && p->chars > f->chars) {
        fail(p, "xml: %s longer than %zu characters", f->name, f->chars);
    } else if (n > f->cap - p->len) {
        if (f->kind == F_TEXT) {
            fail(p, "xml: %s longer than %zu bytes", f->name, f->cap);
        } else {
            fail(p, "xml: %s is not a valid number", f->name);
        }
    } else {
        memcpy(p->text + p->len, s, n);
        p->len += n;
    }
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
    fail(ud, "xml: DOCTYPE not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
    (void)pubid, (void)notation;
    fail(ud, "xml: entity declaration not allowed");
}

static int XMLCALL on_external_entity(XML_Parser xp, const XML_Char *context, const XML_Char *base,
                                      const XML_Char *sysid, const XML_Char *pubid)
{
    (void)context, (void)base, (void)sysid, (void)pubid;
    fail(XML_GetUserData(xp), "xml: external entity not allowed");
    return XML_STATUS_ERROR;
}

static void XMLCALL on_skipped_entity(void *ud, const XML_Char *name, int is_param)
{
    (void)name, (void)is_param;
    fail(ud, "xml: entity reference not allowed");
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    (void)target, (void)data;
    fail(ud, "xml: processing instruction not allowed");
}

/* ---- after the parse -------------------------------------------------------------------- */

static enum wx_wechat_msg_type msg_type_of(const char *s)
{
    for (size_t t = WX_WECHAT_MSG_TEXT; t < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; t++) {
        if (strcmp(s, TYPE_NAMES[t]) == 0) return (enum wx_wechat_msg_type)t;
    }
    return WX_WECHAT_MSG_UNKNOWN;
}

static enum wx_wechat_event event_of(const char *s)
{
    for (size_t e = WX_WECHAT_EVENT_SUBSCRIBE; e < sizeof EVENT_NAMES / sizeof EVENT_NAMES[0];
         e++) {
        if (strcmp(s, EVENT_NAMES[e]) == 0) return (enum wx_wechat_event)e;
    }
    return WX_WECHAT_EVENT_UNKNOWN;
}

/* Sets the enums and checks the fields a message cannot do without. */
static void check_message(struct parse *p)
{
    struct wx_wechat_msg *m = p->m;
    if (HAS(m, FI_EVENT)) m->event = event_of(m->event_text);
    if (!HAS(m, FI_MSG_TYPE)) {
        /* A safe-mode envelope: the message is inside Encrypt. */
        if (!HAS(m, FI_ENCRYPT)) fail(p, "xml: neither MsgType nor Encrypt");
        return;
    }
    m->msg_type = msg_type_of(m->msg_type_text);
    static const enum field_index required[] = {FI_TO_USER, FI_FROM_USER, FI_CREATE_TIME,
                                                FI_MSG_TYPE};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!HAS(m, required[i])) {
            fail(p, "xml: %s missing", FIELDS[required[i]].name);
            return;
        }
    }
    if (m->to_user[0] == '\0' || m->from_user[0] == '\0' || m->msg_type_text[0] == '\0') {
        fail(p, "xml: ToUserName, FromUserName and MsgType must not be empty");
    } else if (m->msg_type == WX_WECHAT_MSG_EVENT && m->event == WX_WECHAT_EVENT_NONE) {
        fail(p, "xml: event without Event");
    }
}

/* A reusable expat parser and the hash salt it was given at creation. */
struct wx_wechat_parser {
    XML_Parser xp;      /* reset before each body */
    unsigned long salt; /* expat's hash salt, set again after each reset (a reset clears it) */
};

wx_wechat_parser_t *wx_wechat_parser_new(unsigned long hash_salt)
{
    /* "UTF-8" overrides any encoding the document declares: the platform sends UTF-8 only. */
    XML_Parser xp = XML_ParserCreate("UTF-8");
    if (xp == NULL) return NULL;
    struct wx_wechat_parser *wp = malloc(sizeof *wp);
    if (wp == NULL) {
        XML_ParserFree(xp);
        return NULL;
    }
    wp->xp = xp;
    wp->salt = hash_salt;
    return wp;
}

void wx_wechat_parser_free(wx_wechat_parser_t *wp)
{
    if (wp == NULL) return;
    XML_ParserFree(wp->xp);
    free(wp);
}

/*
 * Zeroes what a parse wrote into m, which is everything that differs from zero when m was
 * zero before that parse: the text slot (up to its NUL; parsed text never holds a NUL, and a
 * rejected body may leave a slot's text without one, which the bound covers) and the number
 * of every field in m->present, then the enums.
 */
static void msg_clear_parsed(struct wx_wechat_msg *m)
{
    char *base = (char *)m;
    for (uint64_t bits = m->present; bits != 0; bits &= bits - 1) {
        const struct field *f = &FIELDS[__builtin_ctzll(bits)];
        if (f->text != NO_SLOT) {
            char *text = base + f->text;
            size_t n = strnlen(text, f->cap + 1); /* the slot holds cap + 1 bytes */
            memset(text, 0, n <= f->cap ? n + 1 : f->cap + 1);
        }
        if (f->kind != F_TEXT) memset(base + f->num, 0, 8);
    }
    m->present = 0;
    m->msg_type = WX_WECHAT_MSG_UNKNOWN;
    m->event = WX_WECHAT_EVENT_NONE;
}

static void parser_setup(XML_Parser xp, struct parse *p)
{
    XML_SetUserData(xp, p);
    XML_SetElementHandler(xp, on_start, on_end);
    XML_SetCharacterDataHandler(xp, on_text);
    XML_SetStartDoctypeDeclHandler(xp, on_doctype);
    XML_SetEntityDeclHandler(xp, on_entity_decl);
    XML_SetExternalEntityRefHandler(xp, on_external_entity);
    XML_SetSkippedEntityHandler(xp, on_skipped_entity);
    XML_SetProcessingInstructionHandler(xp, on_pi);
    XML_SetParamEntityParsing(xp, XML_PARAM_ENTITY_PARSING_NEVER);
}

/* The parse itself, into an m that is all zeros. */
static int parse_body(struct wx_wechat_parser *wp, const void *body, size_t len,
                      struct wx_wechat_msg *m, struct wx_wechat_xml_error *err)
{
    struct parse p;
    memset(&p, 0, sizeof p);
    p.m = m;
    if (len > WX_WECHAT_BODY_MAX) {
        fail(&p, "xml: body longer than %u bytes", (unsigned)WX_WECHAT_BODY_MAX);
        goto out;
    }
    p.xp = wp->xp;
    /* A reset clears the handlers and the salt (expat would fetch a new one per parse). */
    if (XML_ParserReset(p.xp, "UTF-8") != XML_TRUE || XML_SetHashSalt(p.xp, wp->salt) != 1) {
        fail(&p, "xml: parser reset failed");
        goto out;
    }
    parser_setup(p.xp, &p);
    p.parsing = true;
    enum XML_Status st = XML_Parse(p.xp, body, (int)len, XML_TRUE);
    p.parsing = false;
    if (st != XML_STATUS_OK && !p.failed) {
        fail(&p, "xml: line %lu, column %lu: %s", (unsigned long)XML_GetCurrentLineNumber(p.xp),
             (unsigned long)XML_GetCurrentColumnNumber(p.xp),
             XML_ErrorString(XML_GetErrorCode(p.xp)));
    }
    if (!p.failed) check_message(&p);
out:
    if (!p.failed) return 0;
    if (err != NULL) memcpy(err->why, p.why, sizeof err->why);
    return WX_WECHAT_EPARSE_XML;
}

int wx_wechat_parser_parse(wx_wechat_parser_t *wp, const void *body, size_t len,
                           struct wx_wechat_msg *m, struct wx_wechat_xml_error *err)
{
    assert(wp != NULL && m != NULL);
    assert(body != NULL || len == 0);
    msg_clear_parsed(m);
    return parse_body(wp, body, len, m, err);
}

int wx_wechat_msg_parse(const void *body, size_t len, struct wx_wechat_msg *m,
                        struct wx_wechat_xml_error *err)
{
    assert(m != NULL);
    assert(body != NULL || len == 0);
    memset(m, 0, sizeof *m);
    /* Salt 0: expat draws its own, as a parser used once should. */
    struct wx_wechat_parser *wp = wx_wechat_parser_new(0);
    if (wp == NULL) {
        if (err != NULL) snprintf(err->why, sizeof err->why, "xml: out of memory");
        return WX_WECHAT_EPARSE_XML;
    }
    int rc = parse_body(wp, body, len, m, err);
    wx_wechat_parser_free(wp);
    return rc;
}
