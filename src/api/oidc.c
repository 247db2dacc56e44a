/* /auth/oidc/...: sign-in with an OpenID Connect provider ("Continue with Google"). The
 * protocol lives in core/oidc.c; these handlers turn its outcomes into redirects and cookies
 * for a browser, or JSON errors for a caller that asks for JSON (as /auth/verify does).
 *
 * start sets the gh_oidc cookie (the state, 10 minutes, Path=/auth/oidc) and sends the browser
 * to the provider; callback clears it whatever happens, and either sets gh_session and goes to
 * the console, or goes back to /login?error=oidc_... (see docs/oidc.md). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "core/oidc.h"
#include "lib/log.h"

static bool wants_json(gh_req_t *req)
{
    const char *accept = gh_req_header(req, "accept");
    return accept && strstr(accept, "application/json");
}

static bool not_configured(gh_req_t *req, const gh_config_t *cfg)
{
    if (cfg->oidc_issuer[0])
        return false;
    gh_res_error(req, GH_ENOTFOUND,
                 "Sign-in with an identity provider is not configured: set [oidc] issuer and "
                 "client_id.");
    return true;
}

/* The flow cookie: the state, so that the callback only works in the browser that started
 * the sign-in. An empty value with Max-Age=0 clears it. */
static void set_flow_cookie(gh_req_t *req, const gh_config_t *cfg, const char *state, int max_age)
{
    char cookie[256];
    snprintf(cookie, sizeof(cookie),
             "gh_oidc=%s; Path=/auth/oidc; Max-Age=%d; HttpOnly; SameSite=Lax%s", state, max_age,
             cfg->cookie_secure ? "; Secure" : "");
    gh_res_header(req, "set-cookie", cookie);
    sodium_memzero(cookie, sizeof(cookie));
}

/* The same session cookie as a sign-in link sets (src/api/auth.c). */
/* Answers a failed sign-in: back to /login with `code` for a browser, or the error `err`
 * with `msg` for a JSON caller. */
static void refuse(gh_req_t *req, const gh_config_t *cfg, const char *code, gh_err_t err,
                   const char *msg)
{
    if (wants_json(req)) {
        gh_res_error(req, err, "%s", msg);
        return;
    }
    char location[GH_CONFIG_STR + 64];
    snprintf(location, sizeof(location), "%s/login?error=%s", cfg->public_url, code);
    gh_res_redirect(req, location);
}

void gh_api_oidc_start(gh_req_t *req)
{
    gh_app_t *app = gh_api_ctx(req)->app;
    const gh_config_t *cfg = app->cfg;
    if (not_configured(req, cfg))
        return;
    /* Each start writes a row: throttled per client IP like sign-in emails. */
    char key[96];
    int retry = 0;
    snprintf(key, sizeof(key), "oidc:%s", req->ip);
    if (!gh_throttle_hit(app->throttle, key, cfg->link_limit_per_ip, cfg->link_limit_window_s,
                         app->now(), &retry)) {
        char v[16];
        snprintf(v, sizeof(v), "%d", retry > 0 ? retry : 1);
        gh_res_header(req, "retry-after", v);
        gh_res_error(req, GH_ERATE, "Too many sign-in attempts from your network. Try again "
                                    "later.");
        return;
    }
    char url[GH_OIDC_AUTH_URL_MAX], state[GH_SECRET_MAX];
    gh_oidc_reason_t reason;
    gh_err_t rc = gh_oidc_start(app, url, sizeof(url), state, &reason);
    if (rc) {
        gh_log_warn("oidc: cannot start a sign-in with %s: %s (%s)", cfg->oidc_issuer,
                    gh_oidc_reason_str(reason), gh_err_name(rc));
        char msg[256];
        if (reason == GH_OIDC_UNAVAILABLE) {
            snprintf(msg, sizeof(msg),
                     "%s could not be reached to sign you in. Try again in a minute, or sign "
                     "in with your email.",
                     cfg->oidc_label);
            refuse(req, cfg, "oidc_unavailable", rc == GH_ETIMEOUT ? rc : GH_EIO, msg);
        } else {
            snprintf(msg, sizeof(msg),
                     "Could not start signing you in with %s. Try again, or sign in with your "
                     "email.",
                     cfg->oidc_label);
            refuse(req, cfg, "oidc_failed", reason == GH_OIDC_INTERNAL ? GH_EINTERNAL : rc, msg);
        }
        return;
    }
    set_flow_cookie(req, cfg, state, GH_OIDC_STATE_TTL_S);
    sodium_memzero(state, sizeof(state));
    gh_res_redirect(req, url);
}

void gh_api_oidc_callback(gh_req_t *req)
{
    gh_app_t *app = gh_api_ctx(req)->app;
    const gh_config_t *cfg = app->cfg;
    if (not_configured(req, cfg))
        return;
    /* The state is spent or refused whatever happens next. */
    set_flow_cookie(req, cfg, "", 0);
    char msg[384];

    const char *error = gh_req_query(req, "error");
    if (error) {
        /* error is a short code from the provider (access_denied when the person said no);
         * log only its safe characters. */
        char word[65];
        size_t o = 0;
        for (const char *p = error; *p && o < 64; p++)
            word[o++] =
                (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ? *p : '?';
        word[o] = '\0';
        gh_log_warn("oidc: sign-in refused: the provider answered error \"%s\"", word);
        snprintf(msg, sizeof(msg),
                 "Sign-in with %s was cancelled or refused (%s). Try again, or sign in with "
                 "your email.",
                 cfg->oidc_label, word);
        refuse(req, cfg, "oidc_denied", GH_EINVAL, msg);
        return;
    }

    gh_oidc_callback_t cb = {
        .code = gh_req_query(req, "code"),
        .state = gh_req_query(req, "state"),
        .cookie_state = gh_req_cookie(req, "gh_oidc"),
        .ip = req->ip,
        .user_agent = gh_req_header(req, "user-agent"),
    };
    gh_login_t login;
    gh_oidc_reason_t reason;
    gh_err_t rc = gh_oidc_finish(app, &cb, &login, &reason);
    if (rc == GH_OK) {
        gh_api_session_cookie(req, login.session_secret, cfg->session_ttl_s);
        sodium_memzero(&login, sizeof(login));
        char location[GH_CONFIG_STR + 8];
        snprintf(location, sizeof(location), "%s/", cfg->public_url);
        gh_res_redirect(req, location);
        return;
    }
    gh_log_warn("oidc: sign-in refused: %s (%s)", gh_oidc_reason_str(reason), gh_err_name(rc));
    if (reason == GH_OIDC_EMAIL_UNVERIFIED) {
        snprintf(msg, sizeof(msg),
                 "%s has not verified the email address of your account, so it cannot be "
                 "used to sign in. Verify it with %s, or sign in with your email.",
                 cfg->oidc_label, cfg->oidc_label);
        refuse(req, cfg, "oidc_unverified_email", GH_EINVAL, msg);
        return;
    }
    snprintf(msg, sizeof(msg),
             "Could not sign you in with %s: %s. Try again, or sign in with your email.",
             cfg->oidc_label, gh_oidc_reason_str(reason));
    /* A refusal is the caller's request that cannot succeed; a dead provider or database is
     * ours, and keeps its own status. */
    refuse(req, cfg, "oidc_failed", rc == GH_EAUTH ? GH_EINVAL : rc, msg);
}
