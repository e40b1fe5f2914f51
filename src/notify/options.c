/*
 * options.c - the dispatcher's settings from the alerts.* and sms.* configuration keys.
 */
#include "notify/notify.h"

#include <stdio.h>
#include <string.h>

#include "util/config.h"
#include "util/timeutil.h"

int wx_notify_options_from_config(const struct wx_config *cfg, const char *db_path,
                                  struct wx_notify_options *opt, char *err, size_t errlen)
{
    memset(opt, 0, sizeof *opt);
    opt->db_path = db_path;
    opt->details_url = wx_config_str(cfg, "alerts.details_url");
    opt->tz_offset_minutes = wx_tz_offset_minutes(wx_config_str(cfg, "tz"));
    opt->lang = strcmp(wx_config_str(cfg, "alerts.lang"), "en") == 0 ? WX_LANG_EN : WX_LANG_ZH;
    opt->policy.quiet_below_fen = wx_config_int(cfg, "alerts.sms_quiet_below");
    opt->policy.quiet_pos = wx_config_bool(cfg, "alerts.sms_quiet_pos");
    opt->policy.quiet_cnp = wx_config_bool(cfg, "alerts.sms_quiet_cnp");
    opt->sms_fallback_ms = (unsigned)wx_config_int(cfg, "alerts.sms_fallback_s") * 1000u;
    opt->max_age_ms = (unsigned)wx_config_int(cfg, "alerts.max_age_s") * 1000u;
    opt->max_inflight = (unsigned)wx_config_int(cfg, "alerts.max_inflight");
    opt->queue_max = (unsigned)wx_config_int(cfg, "alerts.queue_max");
    const char *all = wx_config_str(cfg, "alerts.template_id");
    for (int k = WX_ALERT_PURCHASE; k < WX_ALERT_KIND_COUNT; k++) {
        char key[64];
        snprintf(key, sizeof key, "alerts.template_id.%s", wx_alert_kind_name((uint8_t)k));
        const char *own = wx_config_str(cfg, key);
        opt->template_ids[k] = own[0] != '\0' ? own : all;
    }
    opt->template_ids[WX_ALERT_NONE] = "";
    opt->template_fields = wx_config_str(cfg, "alerts.template_fields");
    opt->sms.url = wx_config_str(cfg, "sms.url");
    opt->sms.auth_header = wx_config_str(cfg, "sms.auth_header");
    opt->sms.body_template = wx_config_str(cfg, "sms.body");
    opt->sms.timeout_ms = (unsigned)wx_config_int(cfg, "sms.timeout_ms");
    if (opt->tz_offset_minutes == WX_TZ_INVALID) {
        snprintf(err, errlen, "tz: not a time zone wxbank knows");
        return -1;
    }
    return 0;
}
