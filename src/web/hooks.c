/*
 * hooks.c - the test build's hooks, as wxbank itself has them: nothing.
 *
 * Tests must solve the CAPTCHA a person reads; the program they run (wxbank_test) links
 * tests/support/web_test_hooks.c instead of this file, and only it can tell an answer. This
 * file is linked into wxbank and is kept out of the library, so no production binary holds
 * a way around the picture (a test checks that wxbank answers 404 where wxbank_test tells).
 */
#include "web/web_int.h"

void web_captcha_shown(const char *id, const char *answer)
{
    (void)id;
    (void)answer;
}

bool web_test_route(wx_http_req_t *req, const char *path)
{
    (void)req;
    (void)path;
    return false;
}
