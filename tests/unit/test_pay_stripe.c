/* The Stripe provider against the fake Stripe (tests/e2e/lib/fake-stripe.mjs), run as a
 * child process through tests/e2e/lib/fake-stripe-cli.mjs: `node` must be on PATH and the
 * test run from the repository root (or GH_FAKE_STRIPE_CLI set to the script). The child
 * prints "READY <port>", takes one JSON command per line on stdin (injected failures,
 * statistics) and exits when its stdin closes, which the group teardown does.
 *
 * Covered: provider creation and key handling, a card saved through a SetupIntent, a
 * successful charge with its form and Idempotency-Key, declines, an idempotent retry, a
 * timeout, 5xx, a refused connection, a wrong key (never repeated anywhere, even when the
 * provider quotes it), requests refused before sending, and charges from several threads. */
#include "unit.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/pay_stripe.h"
#include "lib/crypto.h"

extern char **environ;

#define KEY "sk_test_gatehouseUnit0123456789"
#define WRONG_KEY "sk_test_wrongKeyNeverShown987"
#define USD(n) ((int64_t)(n) * INT64_C(1000000000))

static struct {
    pid_t pid;
    FILE *to;   /* the child's stdin */
    FILE *from; /* the child's stdout */
    char base[64];
} fake = {.pid = -1};

/* ---- the fake Stripe child ---- */

static void stop_fake(void);

static int start_fake(void)
{
    const char *script = getenv("GH_FAKE_STRIPE_CLI");
    if (!script)
        script = "tests/e2e/lib/fake-stripe-cli.mjs";
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "test_pay_stripe: %s not found (run from the repository root)\n", script);
        return -1;
    }
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC))
        return -1;
    if (pipe2(out, O_CLOEXEC)) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    char *argv[] = {"node", (char *)script, "--secret-key", KEY, "--echo-key-in-errors",
                    "--no-auto-events", NULL};
    int rc = posix_spawnp(&fake.pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc) {
        fprintf(stderr, "test_pay_stripe: cannot start node (is it on PATH?): %s\n",
                strerror(rc));
        close(in[1]);
        close(out[0]);
        fake.pid = -1;
        return -1;
    }
    fake.to = fdopen(in[1], "w");
    fake.from = fdopen(out[0], "r");
    if (!fake.to || !fake.from) {
        if (!fake.to)
            close(in[1]);
        if (!fake.from)
            close(out[0]);
        goto out_stop;
    }
    /* The child prints READY once it listens; EOF here means it died first. */
    char line[128];
    long port = 0;
    if (fgets(line, sizeof(line), fake.from) && strncmp(line, "READY ", 6) == 0)
        port = strtol(line + 6, NULL, 10);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "test_pay_stripe: the fake Stripe did not start\n");
        goto out_stop;
    }
    snprintf(fake.base, sizeof(fake.base), "http://127.0.0.1:%ld", port);
    return 0;
out_stop:
    stop_fake();
    return -1;
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void stop_fake(void)
{
    if (fake.to)
        fclose(fake.to); /* EOF on its stdin: the child stops the fake and exits */
    fake.to = NULL;
    if (fake.pid > 0) {
        /* Wait for the clean exit, but at most 10 s (SIGALRM interrupts waitpid, as the
         * handler is installed without SA_RESTART); then kill it: never leave it behind. */
        struct sigaction sa = {.sa_handler = on_alarm}, old;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, &old);
        alarm(10);
        int status;
        pid_t r = waitpid(fake.pid, &status, 0);
        alarm(0);
        sigaction(SIGALRM, &old, NULL);
        if (r != fake.pid) {
            fprintf(stderr, "test_pay_stripe: the fake Stripe did not exit; killing it\n");
            kill(fake.pid, SIGKILL);
            waitpid(fake.pid, &status, 0);
        }
    }
    fake.pid = -1;
    if (fake.from)
        fclose(fake.from);
    fake.from = NULL;
}

/* Sends one JSON command to the fake and returns its answer (the caller decrefs). */
static json_t *fake_cmd(const char *line)
{
    assert_true(fputs(line, fake.to) >= 0);
    assert_true(fputc('\n', fake.to) != EOF);
    assert_int_equal(fflush(fake.to), 0);
    char *buf = NULL;
    size_t cap = 0;
    assert_true(getline(&buf, &cap, fake.from) > 0);
    json_t *j = json_loads(buf, 0, NULL);
    free(buf);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "ok")));
    return j;
}

static void fail_next(const char *what)
{
    char line[256];
    snprintf(line, sizeof(line), "{\"cmd\":\"failNext\",%s}", what);
    json_decref(fake_cmd(line));
}

/* The PaymentIntents the fake holds with metadata[purchase_id] = `purchase`, and the
 * POST /v1/payment_intents requests it saw with that Idempotency-Key. */
static void charges_for(const char *purchase, size_t *intents, size_t *requests,
                        char pi_id[GH_PAY_REF_MAX])
{
    json_t *s = fake_cmd("{\"cmd\":\"stats\"}");
    size_t i;
    json_t *v;
    *intents = *requests = 0;
    json_array_foreach(json_object_get(s, "paymentIntents"), i, v)
    {
        const char *p = json_string_value(json_object_get(json_object_get(v, "metadata"),
                                                          "purchase_id"));
        if (p && !strcmp(p, purchase)) {
            ++*intents;
            if (pi_id)
                snprintf(pi_id, GH_PAY_REF_MAX, "%s", json_string_value(json_object_get(v, "id")));
        }
    }
    json_array_foreach(json_object_get(s, "requests"), i, v)
    {
        const char *k = json_string_value(json_object_get(v, "idempotencyKey"));
        if (k && !strcmp(k, purchase) &&
            !strcmp(json_string_value(json_object_get(v, "path")), "/v1/payment_intents"))
            ++*requests;
    }
    json_decref(s);
}

static size_t request_count(void)
{
    json_t *s = fake_cmd("{\"cmd\":\"stats\"}");
    size_t n = json_array_size(json_object_get(s, "requests"));
    json_decref(s);
    return n;
}

/* ---- helpers ---- */

static size_t sink(char *p, size_t size, size_t n, void *user)
{
    (void)p, (void)user;
    return size * n;
}

/* What the fake Stripe.js does in the browser: confirms the SetupIntent behind
 * `client_secret` with the publishable key and a test card token. */
static void confirm_setup(const char *client_secret, const char *token)
{
    char seti[GH_PAY_REF_MAX];
    const char *cut = strstr(client_secret, "_secret_");
    assert_non_null(cut);
    snprintf(seti, sizeof(seti), "%.*s", (int)(cut - client_secret), client_secret);
    char url[256], form[512];
    snprintf(url, sizeof(url), "%s/v1/setup_intents/%s/confirm", fake.base, seti);
    snprintf(form, sizeof(form), "key=pk_test_unit&client_secret=%s&payment_method=%s",
             client_secret, token);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    assert_int_equal(status, 200);
}

static gh_pay_t *provider(const char *key, long timeout_ms)
{
    gh_pay_t *p = NULL;
    char err[256];
    gh_pay_stripe_opts_t o = {.api_base = fake.base, .secret_key = key, .timeout_ms = timeout_ms};
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    return p;
}

/* A customer for `org` with a card saved from `token`. */
static void saved_card(gh_pay_t *p, const char *org, const char *token,
                       char customer[GH_PAY_REF_MAX], gh_card_t *card)
{
    char secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    customer[0] = '\0';
    assert_int_equal(p->ops->setup_start(p, org, "billing@example.com", customer, secret, msg,
                                         sizeof(msg)),
                     GH_OK);
    assert_memory_equal(customer, "cus_", 4);
    assert_memory_equal(secret, "seti_", 5);
    confirm_setup(secret, token);
    char seti[GH_PAY_REF_MAX];
    snprintf(seti, sizeof(seti), "%.*s", (int)(strstr(secret, "_secret_") - secret), secret);
    assert_int_equal(p->ops->setup_finish(p, customer, seti, card, msg, sizeof(msg)), GH_OK);
    assert_memory_equal(card->ref, "pm_", 3);
}

static gh_pay_charge_t charge_req(const char *purchase, const char *customer,
                                  const gh_card_t *card)
{
    return (gh_pay_charge_t){
        .idempotency_key = purchase,
        .purchase_id = purchase,
        .org_id = "org_01unit",
        .amount_nusd = USD(15),
        .description = "Gatehouse credits",
        .customer_ref = customer,
        .card = card,
        .off_session = true,
    };
}

/* Runs `fn` with standard error sent to a temporary file and returns what was written
 * (malloc'd), so that a test can read the log lines the provider wrote. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/gh-test-stripe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    fn(arg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    assert_true(len >= 0);
    char *text = calloc(1, (size_t)len + 1);
    assert_non_null(text);
    assert_int_equal(pread(fd, text, (size_t)len, 0), len);
    close(fd);
    return text;
}

/* ---- tests ---- */

static void creation_checks_key_and_base(void **state)
{
    (void)state;
    gh_pay_t *p = NULL;
    char err[256];
    gh_pay_stripe_opts_t o = {.api_base = NULL, .secret_key = KEY};
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    assert_string_equal(p->ops->name, "stripe");
    assert_true(p->ops->test_mode);
    p->ops->destroy(p);

    o.secret_key = "sk_live_abcdefgh12345678";
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    assert_false(p->ops->test_mode);
    gh_card_t card;
    char msg[GH_PAY_MSG_MAX];
    assert_int_equal(p->ops->card_from_details(p, "4242424242424242", 12, 2040, "123", 0, &card,
                                               msg, sizeof(msg)),
                     GH_EINVAL);
    assert_string_equal(msg, "card numbers are entered in Stripe's form");
    p->ops->destroy(p);

    const char *bad_keys[] = {"", "pk_test_abcdefgh1234", "sk_test_has space", "sk_test_x\r\nX: y",
                              "sk_"};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        o.secret_key = bad_keys[i];
        err[0] = '\0';
        assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_EINVAL);
        assert_null(p);
        assert_true(err[0]);
        if (strlen(bad_keys[i]) > 8) /* the message names the "sk_" prefix itself */
            assert_null(strstr(err, bad_keys[i]));
    }
    o.secret_key = NULL;
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_EINVAL);

    o.secret_key = KEY;
    const char *bad_bases[] = {"http://example.com", "ftp://127.0.0.1", "http://127.0.0.1.evil.com",
                               "https://api.stripe.com/?x", "https://"};
    for (size_t i = 0; i < sizeof(bad_bases) / sizeof(bad_bases[0]); i++) {
        o.api_base = bad_bases[i];
        assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_EINVAL);
    }
    o.api_base = "http://localhost:1234/";
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    p->ops->destroy(p);
}

static void saved_card_is_charged(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01unit", "pm_card_visa", customer, &card);
    assert_string_equal(card.brand, "visa");
    assert_string_equal(card.last4, "4242");
    assert_int_equal(card.exp_month, 12);
    assert_true(card.exp_year > 2025);

    /* A second setup for the same customer reuses it. */
    char again[GH_PAY_REF_MAX], secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    snprintf(again, sizeof(again), "%s", customer);
    assert_int_equal(p->ops->setup_start(p, "org_01unit", "billing@example.com", again, secret,
                                         msg, sizeof(msg)),
                     GH_OK);
    assert_string_equal(again, customer);

    gh_pay_charge_t req = charge_req("pur_01success", customer, &card);
    gh_pay_result_t res;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_SUCCEEDED);
    assert_memory_equal(res.ref, "pi_", 3);

    json_t *s = fake_cmd("{\"cmd\":\"stats\"}");
    size_t i;
    json_t *v, *found = NULL;
    json_array_foreach(json_object_get(s, "paymentIntents"), i, v)
    {
        if (!strcmp(json_string_value(json_object_get(v, "id")), res.ref))
            found = v;
    }
    assert_non_null(found);
    assert_int_equal(json_integer_value(json_object_get(found, "amount")), 1500);
    assert_string_equal(json_string_value(json_object_get(found, "customer")), customer);
    assert_string_equal(json_string_value(json_object_get(found, "payment_method")), card.ref);
    json_t *meta = json_object_get(found, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "purchase_id")), "pur_01success");
    assert_string_equal(json_string_value(json_object_get(meta, "org_id")), "org_01unit");
    json_decref(s);
    size_t intents, requests;
    charges_for("pur_01success", &intents, &requests, NULL);
    assert_int_equal(intents, 1);
    assert_int_equal(requests, 1); /* sent with the purchase id as Idempotency-Key */
    p->ops->destroy(p);
}

static void setup_finish_refuses_what_is_not_ours(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX] = "", secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    gh_card_t card;
    assert_int_equal(p->ops->setup_start(p, "org_01a", "a@example.com", customer, secret, msg,
                                         sizeof(msg)),
                     GH_OK);
    char seti[GH_PAY_REF_MAX];
    snprintf(seti, sizeof(seti), "%.*s", (int)(strstr(secret, "_secret_") - secret), secret);

    /* Not confirmed yet. */
    assert_int_equal(p->ops->setup_finish(p, customer, seti, &card, msg, sizeof(msg)), GH_EINVAL);
    assert_true(msg[0]);
    assert_string_equal(card.ref, "");

    confirm_setup(secret, "pm_card_mastercard");
    /* Another organization's customer cannot claim it. */
    char other[GH_PAY_REF_MAX] = "", secret2[GH_PAY_SECRET_MAX];
    assert_int_equal(p->ops->setup_start(p, "org_01b", "b@example.com", other, secret2, msg,
                                         sizeof(msg)),
                     GH_OK);
    assert_string_not_equal(other, customer);
    assert_int_equal(p->ops->setup_finish(p, other, seti, &card, msg, sizeof(msg)), GH_EINVAL);
    assert_string_equal(msg, "This card setup belongs to another account.");

    assert_int_equal(p->ops->setup_finish(p, customer, "seti_doesNotExist", &card, msg,
                                          sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(p->ops->setup_finish(p, customer, "seti_../../v1/customers", &card, msg,
                                          sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(p->ops->setup_finish(p, customer, "pi_notASetup", &card, msg, sizeof(msg)),
                     GH_EINVAL);

    assert_int_equal(p->ops->setup_finish(p, customer, seti, &card, msg, sizeof(msg)), GH_OK);
    assert_string_equal(card.brand, "mastercard");
    assert_string_equal(card.last4, "4444");

    /* A customer Stripe does not know (deleted in the dashboard): the caller starts over. */
    char gone[GH_PAY_REF_MAX] = "cus_deletedLongAgo";
    assert_int_equal(p->ops->setup_start(p, "org_01a", "a@example.com", gone, secret, msg,
                                         sizeof(msg)),
                     GH_ENOTFOUND);
    assert_string_equal(secret, "");
    p->ops->destroy(p);
}

static void declines_carry_code_and_message(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01poor", "pm_card_chargeDeclinedInsufficientFunds", customer, &card);
    assert_string_equal(card.last4, "9995");
    gh_pay_charge_t req = charge_req("pur_01poor", customer, &card);
    gh_pay_result_t res;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_DECLINED);
    assert_string_equal(res.decline_code, "insufficient_funds");
    assert_string_equal(res.message, "Your card has insufficient funds.");
    assert_memory_equal(res.ref, "pi_", 3);

    saved_card(p, "org_01generic", "pm_card_chargeDeclined", customer, &card);
    req = charge_req("pur_01generic", customer, &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_DECLINED);
    assert_string_equal(res.decline_code, "generic_decline");
    assert_string_equal(res.message, "Your card was declined.");

    /* A card that needs the customer's bank: declined off session, pending on session. */
    saved_card(p, "org_01sca", "pm_card_authenticationRequired", customer, &card);
    req = charge_req("pur_01scaoff", customer, &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_DECLINED);
    assert_string_equal(res.decline_code, "authentication_required");
    req = charge_req("pur_01scaon", customer, &card);
    req.off_session = false;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_memory_equal(res.ref, "pi_", 3);
    assert_true(res.message[0]);

    /* A customer deleted at Stripe: refused before anything happened, so declined. */
    req = charge_req("pur_01gone", "cus_deletedLongAgo", &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_DECLINED);
    assert_string_equal(res.decline_code, "resource_missing");
    assert_non_null(strstr(res.message, "nothing was charged"));

    /* Processing: pending, with the PaymentIntent to resolve it by. */
    saved_card(p, "org_01slow", "pm_card_pending", customer, &card);
    req = charge_req("pur_01processing", customer, &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_memory_equal(res.ref, "pi_", 3);
    p->ops->destroy(p);
}

static void retry_with_same_key_charges_once(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01retry", "pm_card_visa", customer, &card);
    gh_pay_charge_t req = charge_req("pur_01retry", customer, &card);
    gh_pay_result_t first, second;
    assert_int_equal(p->ops->charge(p, &req, &first), GH_OK);
    assert_int_equal(p->ops->charge(p, &req, &second), GH_OK);
    assert_int_equal(first.status, GH_PAY_SUCCEEDED);
    assert_int_equal(second.status, GH_PAY_SUCCEEDED);
    assert_string_equal(first.ref, second.ref);
    size_t intents, requests;
    char pi[GH_PAY_REF_MAX];
    charges_for("pur_01retry", &intents, &requests, pi);
    assert_int_equal(intents, 1);
    assert_int_equal(requests, 2);
    assert_string_equal(pi, first.ref);

    /* Another amount under the same key: Stripe's idempotency error, which must not be
     * taken for a decline (the first request may have charged). */
    req.amount_nusd = USD(16);
    assert_int_equal(p->ops->charge(p, &req, &second), GH_OK);
    assert_int_equal(second.status, GH_PAY_PENDING);
    charges_for("pur_01retry", &intents, &requests, NULL);
    assert_int_equal(intents, 1);
    p->ops->destroy(p);
}

static void timeout_is_pending(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    gh_pay_t *hasty = provider(KEY, 300);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01hang", "pm_card_visa", customer, &card);
    gh_pay_charge_t req = charge_req("pur_01hang", customer, &card);
    gh_pay_result_t res;

    fail_next("\"n\":1,\"hang\":true,\"match\":\"POST /v1/payment_intents\"");
    assert_int_equal(hasty->ops->charge(hasty, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_string_equal(res.ref, "");
    assert_non_null(strstr(res.message, "did not answer in time"));

    /* The retry with the same key settles it. */
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_SUCCEEDED);
    size_t intents, requests;
    charges_for("pur_01hang", &intents, &requests, NULL);
    assert_int_equal(intents, 1);
    assert_int_equal(requests, 2);

    /* Setting up a card in the same situation is a timeout error. */
    char c2[GH_PAY_REF_MAX] = "", secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    fail_next("\"n\":1,\"hang\":true,\"match\":\"POST /v1/customers\"");
    assert_int_equal(hasty->ops->setup_start(hasty, "org_01hang2", "h@example.com", c2, secret,
                                             msg, sizeof(msg)),
                     GH_ETIMEOUT);
    assert_string_equal(c2, "");
    assert_true(msg[0]);
    hasty->ops->destroy(hasty);
    p->ops->destroy(p);
}

static void server_errors_are_pending(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01e500", "pm_card_visa", customer, &card);
    gh_pay_charge_t req = charge_req("pur_01e500", customer, &card);
    gh_pay_result_t res;
    fail_next("\"n\":1,\"status\":500,\"match\":\"POST /v1/payment_intents\"");
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_true(res.message[0]);

    fail_next("\"n\":1,\"status\":429,\"match\":\"POST /v1/payment_intents\"");
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);

    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_SUCCEEDED);

    char c2[GH_PAY_REF_MAX], secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    snprintf(c2, sizeof(c2), "%s", customer);
    fail_next("\"n\":1,\"status\":503,\"match\":\"POST /v1/setup_intents\"");
    assert_int_equal(p->ops->setup_start(p, "org_01e500", "e@example.com", c2, secret, msg,
                                         sizeof(msg)),
                     GH_EUNAVAIL);
    assert_string_equal(secret, "");
    p->ops->destroy(p);
}

static void refused_connection_is_pending(void **state)
{
    (void)state;
    /* A port nothing listens on: bind one, note it, close it. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
    close(s);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", ntohs(a.sin_port));

    gh_pay_t *p = NULL;
    char err[256];
    gh_pay_stripe_opts_t o = {.api_base = base, .secret_key = KEY, .timeout_ms = 2000};
    assert_int_equal(gh_pay_stripe_new(&o, &p, err, sizeof(err)), GH_OK);
    gh_card_t card = {.ref = "pm_x"};
    gh_pay_charge_t req = charge_req("pur_01refused", "cus_x", &card);
    gh_pay_result_t res;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_OK);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_non_null(strstr(res.message, "could not be reached"));

    char customer[GH_PAY_REF_MAX] = "", secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
    assert_int_equal(p->ops->setup_start(p, "org_01x", "x@example.com", customer, secret, msg,
                                         sizeof(msg)),
                     GH_EUNAVAIL);
    p->ops->destroy(p);
}

typedef struct {
    gh_pay_t *p;
    const gh_pay_charge_t *req;
    gh_pay_result_t res;
    gh_err_t rc;
    char customer[GH_PAY_REF_MAX], secret[GH_PAY_SECRET_MAX], msg[GH_PAY_MSG_MAX];
} wrong_key_run_t;

static void wrong_key_calls(void *arg)
{
    wrong_key_run_t *w = arg;
    w->p->ops->charge(w->p, w->req, &w->res);
    w->rc = w->p->ops->setup_start(w->p, "org_01wrong", "w@example.com", w->customer, w->secret,
                                   w->msg, sizeof(w->msg));
}

static void wrong_key_is_never_repeated(void **state)
{
    (void)state;
    gh_pay_t *good = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(good, "org_01wrong", "pm_card_visa", customer, &card);
    good->ops->destroy(good);

    /* This fake quotes a refused key in full, which Stripe does not: all the better. */
    wrong_key_run_t w = {.p = provider(WRONG_KEY, 5000)};
    gh_pay_charge_t req = charge_req("pur_01wrong", customer, &card);
    w.req = &req;
    char *log = capture_stderr(wrong_key_calls, &w);
    assert_int_equal(w.res.status, GH_PAY_PENDING); /* says nothing of earlier attempts */
    assert_true(w.res.message[0]);
    assert_null(strstr(w.res.message, "wrongKey"));
    assert_null(strstr(w.res.decline_code, "wrongKey"));
    assert_int_equal(w.rc, GH_EBILLING);
    assert_null(strstr(w.msg, "wrongKey"));
    assert_string_equal(w.customer, "");
    assert_null(strstr(log, "wrongKey"));
    assert_non_null(strstr(log, "HTTP 401"));
    assert_non_null(strstr(log, "[redacted]"));
    assert_non_null(strstr(log, "stripe_secret_key_env"));
    free(log);
    size_t intents, requests;
    charges_for("pur_01wrong", &intents, &requests, NULL);
    assert_int_equal(intents, 0);
    w.p->ops->destroy(w.p);
}

static void bad_requests_are_not_sent(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    gh_card_t card = {.ref = "pm_abc"};
    gh_pay_result_t res;
    size_t before = request_count();

    gh_pay_charge_t req = charge_req("pur_01bad", "cus_abc", &card);
    req.amount_nusd = USD(1) + 1; /* not whole cents */
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    assert_int_equal(res.status, GH_PAY_PENDING);
    assert_true(res.message[0]);
    req = charge_req("pur_01bad", "cus_abc", &card);
    req.amount_nusd = 0;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    req = charge_req("pur_01bad", "cus_abc", NULL);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    req = charge_req("pur_01bad", "", &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    req = charge_req("pur_01bad\r\nX-Evil: 1", "cus_abc", &card);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    gh_card_t odd = {.ref = "pm_x&amount=1"};
    req = charge_req("pur_01bad", "cus_abc", &odd);
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);
    static char long_description[8192];
    memset(long_description, 'd', sizeof(long_description) - 1);
    req = charge_req("pur_01bad", "cus_abc", &card);
    req.description = long_description;
    assert_int_equal(p->ops->charge(p, &req, &res), GH_EINVAL);

    char customer[GH_PAY_REF_MAX] = "cus_bad/../x", secret[GH_PAY_SECRET_MAX],
         msg[GH_PAY_MSG_MAX];
    assert_int_equal(p->ops->setup_start(p, "org_01x", "x@example.com", customer, secret, msg,
                                         sizeof(msg)),
                     GH_EINVAL);
    customer[0] = '\0';
    assert_int_equal(p->ops->setup_start(p, "org_01x", "", customer, secret, msg, sizeof(msg)),
                     GH_EINVAL);
    assert_int_equal(request_count(), before);
    p->ops->destroy(p);
}

typedef struct {
    gh_pay_t *p;
    gh_pay_charge_t req;
    char purchase[32];
    gh_pay_result_t res;
    gh_err_t rc;
} thread_run_t;

static void *charge_thread(void *arg)
{
    thread_run_t *t = arg;
    t->rc = t->p->ops->charge(t->p, &t->req, &t->res);
    return NULL;
}

static void threads_share_one_provider(void **state)
{
    (void)state;
    gh_pay_t *p = provider(KEY, 5000);
    char customer[GH_PAY_REF_MAX];
    gh_card_t card;
    saved_card(p, "org_01threads", "pm_card_visa", customer, &card);
    enum { N = 6 };
    thread_run_t runs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        runs[i].p = p;
        snprintf(runs[i].purchase, sizeof(runs[i].purchase), "pur_01thread%d", i);
        runs[i].req = charge_req(runs[i].purchase, customer, &card);
        assert_int_equal(pthread_create(&th[i], NULL, charge_thread, &runs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(runs[i].rc, GH_OK);
        assert_int_equal(runs[i].res.status, GH_PAY_SUCCEEDED);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(runs[i].res.ref, runs[j].res.ref);
    }
    p->ops->destroy(p);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (gh_crypto_init() || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    return start_fake();
}

static int group_teardown(void **state)
{
    (void)state;
    stop_fake();
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creation_checks_key_and_base),
        cmocka_unit_test(saved_card_is_charged),
        cmocka_unit_test(setup_finish_refuses_what_is_not_ours),
        cmocka_unit_test(declines_carry_code_and_message),
        cmocka_unit_test(retry_with_same_key_charges_once),
        cmocka_unit_test(timeout_is_pending),
        cmocka_unit_test(server_errors_are_pending),
        cmocka_unit_test(refused_connection_is_pending),
        cmocka_unit_test(wrong_key_is_never_repeated),
        cmocka_unit_test(bad_requests_are_not_sent),
        cmocka_unit_test(threads_share_one_provider),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
