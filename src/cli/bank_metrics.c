/*
 * bank_metrics.c - what /metrics says about the bank: the collectors over the counters its
 * modules keep (HTTP listener, journal, engine, outbound HTTP client, WeChat API client,
 * webhook) and the process's uptime.
 *
 * They live with the bank rather than in each module so that the modules stay free of the
 * metrics registry and the metric names, which operators build dashboards and alerts on,
 * are all on one page. Every name starts with wxbank_; counters end in _total, and a
 * quantity carries its unit last (_seconds, _bytes). The ISO 8583 host keeps no counters
 * it exposes yet, so it has no collector.
 *
 * Collectors run on the hub's loop, which owns the engine, the webhook and the clients;
 * the listener's and the journal's counters are atomics kept by their own threads.
 */
#include "cli/bank.h"

#include <assert.h>

#include "journal/journal.h"
#include "ledger/ledger.h"
#include "util/timeutil.h"

/* When the bank started serving, for its uptime: one bank per process, so this is a fact
 * of the process, like its pid. */
static int64_t started_mono_us;

static void collect_uptime(struct wx_metrics_out *o, void *arg)
{
    (void)arg;
    wx_metrics_gauge(o, "wxbank_uptime_seconds", "Seconds since the bank started serving.", NULL,
                     (double)(wx_mono_us() - started_mono_us) / 1e6);
}

static void collect_http(struct wx_metrics_out *o, void *arg)
{
    struct wx_http_stats st;
    wx_http_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_http_connections_accepted_total",
                       "Connections the HTTP listener accepted.", NULL, st.accepted);
    wx_metrics_gauge(o, "wxbank_http_connections_open",
                     "Connections the HTTP listener has open now.", NULL, st.open);
    wx_metrics_counter(o, "wxbank_http_requests_total",
                       "HTTP requests read and handed to a route (or answered 404).", NULL,
                       st.requests);
    wx_metrics_counter(o, "wxbank_http_refused_total",
                       "HTTP requests the listener refused itself as malformed or over a "
                       "limit (4xx or 5xx, then the connection closes).",
                       NULL, st.refused);
}

static void collect_journal(struct wx_metrics_out *o, void *arg)
{
    struct wx_ledger *ledger = wx_hub_ledger(arg);
    struct wx_journal_stats st;
    wx_ledger_journal_stats(ledger, &st);
    wx_metrics_counter(o, "wxbank_journal_commits_total",
                       "Group commits of the journal (one fsync each).", NULL, st.commits);
    wx_metrics_counter(o, "wxbank_journal_rows_total", "Decisions written to the journal.", NULL,
                       st.rows);
    wx_metrics_counter(o, "wxbank_journal_bytes_total",
                       "Bytes of decision bodies written to the journal.", NULL, st.bytes);
    wx_metrics_counter_double(o, "wxbank_journal_commit_seconds_total",
                              "Wall time spent in group commits, from BEGIN to the end of "
                              "COMMIT.",
                              NULL, (double)st.commit_us_total / 1e6);
    wx_metrics_gauge(o, "wxbank_journal_durable_seq",
                     "The highest journal seq on disk: answers up to it may leave.", NULL,
                     (double)wx_ledger_durable_seq(ledger));
}

static void collect_engine(struct wx_metrics_out *o, void *arg)
{
    struct wx_engine_stats st;
    wx_engine_stats(wx_hub_engine(arg), &st);
    wx_metrics_gauge(o, "wxbank_engine_customers", "Customers in the engine.", NULL, st.customers);
    wx_metrics_gauge(o, "wxbank_engine_accounts", "Card accounts in the engine.", NULL,
                     st.accounts);
    wx_metrics_gauge(o, "wxbank_engine_cards", "Cards in the engine.", NULL, st.cards);
    wx_metrics_gauge(o, "wxbank_engine_followers", "WeChat followers bound to a customer.", NULL,
                     st.followers);
    wx_metrics_gauge(o, "wxbank_engine_records",
                     "Command keys whose first answer the engine remembers for repeats.", NULL,
                     (double)st.records);
    wx_metrics_gauge(o, "wxbank_engine_open_holds",
                     "Authorization holds not yet captured, reversed or expired.", NULL,
                     (double)st.open_holds);
    wx_metrics_gauge(o, "wxbank_engine_last_seq",
                     "The journal seq of the engine's latest decision (durable or not).", NULL,
                     (double)st.last_seq);
    wx_metrics_gauge(o, "wxbank_engine_time_seconds",
                     "The engine's clock: the time of the latest command, UTC epoch seconds.", NULL,
                     (double)st.now_ms / 1e3);
    wx_metrics_gauge(o, "wxbank_engine_memory_bytes", "Memory the engine's tables hold.", NULL,
                     (double)st.bytes);
}

static void collect_fetch(struct wx_metrics_out *o, void *arg)
{
    struct wx_fetch_stats st;
    wx_fetch_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_fetch_started_total",
                       "Outbound HTTP requests the client accepted.", NULL, st.started);
    static const char finished_help[] = "Outbound HTTP requests finished: ok when a response "
                                        "arrived (any status code), failed otherwise.";
    wx_metrics_counter(o, "wxbank_fetch_finished_total", finished_help, "result=\"ok\"",
                       st.completed);
    wx_metrics_counter(o, "wxbank_fetch_finished_total", finished_help, "result=\"failed\"",
                       st.failed);
    wx_metrics_gauge(o, "wxbank_fetch_in_flight", "Outbound HTTP transfers under way now.", NULL,
                     st.in_flight);
    wx_metrics_gauge(o, "wxbank_fetch_queued",
                     "Outbound HTTP requests waiting for a transfer slot.", NULL, st.queued);
    wx_metrics_gauge(o, "wxbank_fetch_in_flight_max",
                     "The most outbound HTTP transfers under way at once since start.", NULL,
                     st.in_flight_max);
}

static void collect_wechat_api(struct wx_metrics_out *o, void *arg)
{
    struct wx_wechat_api_stats st;
    wx_wechat_api_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_wechat_api_tokens_total",
                       "Access tokens fetched from the WeChat platform.", NULL, st.tokens);
    wx_metrics_counter(o, "wxbank_wechat_api_attempts_total",
                       "Requests sent to the WeChat platform API, retries included.", NULL,
                       st.calls);
    wx_metrics_counter(o, "wxbank_wechat_api_retries_total",
                       "WeChat API attempts made again after a retryable failure.", NULL,
                       st.retries);
    static const char calls_help[] = "WeChat API calls finished, by outcome: ok, retryable "
                                     "(gave up on a passing failure) or permanent.";
    wx_metrics_counter(o, "wxbank_wechat_api_calls_total", calls_help, "result=\"ok\"", st.ok);
    wx_metrics_counter(o, "wxbank_wechat_api_calls_total", calls_help, "result=\"retryable\"",
                       st.retryable);
    wx_metrics_counter(o, "wxbank_wechat_api_calls_total", calls_help, "result=\"permanent\"",
                       st.permanent);
}

static void collect_webhook(struct wx_metrics_out *o, void *arg)
{
    struct wx_webhook_stats st;
    wx_webhook_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_webhook_messages_total",
                       "WeChat messages the webhook answered for the first time.", NULL,
                       st.processed);
    wx_metrics_counter(o, "wxbank_webhook_repeats_total",
                       "Platform retries of a message, answered from memory.", NULL, st.repeats);
    wx_metrics_counter(o, "wxbank_webhook_refused_total",
                       "Webhook requests refused with a 4xx or 5xx (bad signature, malformed, "
                       "overloaded).",
                       NULL, st.refused);
    wx_metrics_counter(o, "wxbank_webhook_late_total",
                       "Answers that missed the platform's deadline and went as a "
                       "customer-service message instead.",
                       NULL, st.late);
}

static void collect_alerts(struct wx_metrics_out *o, void *arg)
{
    struct wx_notify_stats st;
    wx_notify_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_alerts_total", "Alerts derived from journaled decisions.", NULL,
                       st.alerts);
    wx_metrics_gauge(o, "wxbank_alerts_queued", "Alert sends not yet accepted, refused or dead.",
                     NULL, (double)st.queued);
    wx_metrics_gauge(o, "wxbank_alerts_in_flight", "Alert sends waiting for an answer.", NULL,
                     (double)st.in_flight);
    wx_metrics_counter(o, "wxbank_alerts_sent_total",
                       "Alert sends accepted by the WeChat platform or the SMS gateway.",
                       "channel=\"wechat\"", st.sent_wechat);
    wx_metrics_counter(o, "wxbank_alerts_sent_total",
                       "Alert sends accepted by the WeChat platform or the SMS gateway.",
                       "channel=\"sms\"", st.sent_sms);
    wx_metrics_counter(o, "wxbank_alerts_delivered_total",
                       "Template messages WeChat reported delivered.", NULL, st.delivered);
    wx_metrics_counter(o, "wxbank_alerts_retries_total",
                       "Alert send attempts after a retryable failure.", NULL, st.retries);
    wx_metrics_counter(o, "wxbank_alerts_failed_total",
                       "Alert sends refused for good (not a follower, blocked, bad number).", NULL,
                       st.failed);
    wx_metrics_counter(o, "wxbank_alerts_dead_total",
                       "Alert sends whose retries ran out: the dead-letter list.", NULL, st.dead);
    wx_metrics_counter(o, "wxbank_alerts_sms_fallbacks_total",
                       "SMS sent because WeChat failed or stayed undelivered.", NULL,
                       st.sms_fallbacks);
    wx_metrics_gauge(o, "wxbank_alerts_oldest_unsent_seconds",
                     "Age of the oldest alert send not yet accepted; 0 when none.", NULL,
                     st.oldest_unsent_s);
    wx_metrics_gauge(o, "wxbank_alerts_derived_seq",
                     "Journal rows up to this seq have been looked at for alerts.", NULL,
                     (double)st.derived_seq);
    wx_metrics_histogram(o, "wxbank_alerts_send_latency_seconds",
                         "From the decision to the platform's or gateway's acceptance of an "
                         "alert's first try.",
                         &st.latency);
}

static void collect_web(struct wx_metrics_out *o, void *arg)
{
    struct wx_web_stats st;
    wx_web_stats(arg, &st);
    wx_metrics_counter(o, "wxbank_web_pages_total", "Secure pages answered.", NULL, st.pages);
    wx_metrics_counter(o, "wxbank_web_refused_total",
                       "Secure pages answered with a refusal (4xx, 5xx).", NULL, st.refused);
    wx_metrics_counter(o, "wxbank_web_logins_total", "Logins on the secure pages, by result.",
                       "result=\"ok\"", st.logins_ok);
    wx_metrics_counter(o, "wxbank_web_logins_total", "Logins on the secure pages, by result.",
                       "result=\"failed\"", st.logins_failed);
    wx_metrics_counter(o, "wxbank_web_binds_total",
                       "WeChat followers bound by cardholders on the secure pages.", NULL,
                       st.binds);
    wx_metrics_gauge(o, "wxbank_web_sessions", "Secure-page sessions open now.", NULL,
                     (double)st.sessions);
}

void wx_bank_metrics_start(struct wx_bank *b)
{
    assert(b->hub != NULL);
    assert(b->http != NULL);
    assert(b->metrics == NULL);
    started_mono_us = wx_mono_us();
    b->metrics = wx_metrics_start(b->http);
    wx_metrics_add(b->metrics, collect_uptime, NULL);
    wx_metrics_add(b->metrics, collect_http, b->http);
    if (wx_hub_ledger(b->hub) != NULL) {
        wx_metrics_add(b->metrics, collect_journal, b->hub);
        wx_metrics_add(b->metrics, collect_engine, b->hub);
    }
    if (b->fetch != NULL) wx_metrics_add(b->metrics, collect_fetch, b->fetch);
    if (b->api != NULL) wx_metrics_add(b->metrics, collect_wechat_api, b->api);
    if (b->webhook != NULL) wx_metrics_add(b->metrics, collect_webhook, b->webhook);
    if (b->notify != NULL) wx_metrics_add(b->metrics, collect_alerts, b->notify);
    if (b->web != NULL) wx_metrics_add(b->metrics, collect_web, b->web);
}
