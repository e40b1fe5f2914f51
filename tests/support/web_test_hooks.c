/*
 * web_test_hooks.c - how tests read a CAPTCHA: linked into wxbank_test (the test build of
 * the server) in place of src/web/hooks.c, never into wxbank.
 *
 * The pages tell this file each answer as they make it; GET /m/test/captcha/<id> (HTTPS, like
 * every /m/ path) gives it back as text, once. A few recent answers are kept. Both run on the
 * hub's loop.
 */
#include <stdio.h>
#include <string.h>

#include "web/web_int.h"

#define KEPT 32

static struct {
    char id[17];
    char answer[WX_CAPTCHA_LEN + 1];
} kept[KEPT];
static unsigned next;

void web_captcha_shown(const char *id, const char *answer)
{
    snprintf(kept[next % KEPT].id, sizeof kept[0].id, "%s", id);
    snprintf(kept[next % KEPT].answer, sizeof kept[0].answer, "%s", answer);
    next++;
}

bool web_test_route(wx_http_req_t *req, const char *path)
{
    static const char PREFIX[] = "/m/test/captcha/";
    if (strncmp(path, PREFIX, sizeof PREFIX - 1) != 0) return false;
    const char *id = path + sizeof PREFIX - 1;
    for (unsigned i = 0; i < KEPT; i++) {
        if (kept[i].id[0] != '\0' && strcmp(kept[i].id, id) == 0) {
            wx_http_send(req, 200, "text/plain; charset=utf-8", kept[i].answer,
                         strlen(kept[i].answer));
            memset(&kept[i], 0, sizeof kept[i]);
            return true;
        }
    }
    wx_http_error(req, 404, "no such CAPTCHA");
    return true;
}
