/* gatehouse: the command line. `serve` runs both planes; `migrate` brings the database schema
 * up to date; `credits` and `ledger` are staff tools for billing; `staff` makes accounts
 * platform staff; `version` prints the version. Every subcommand that opens the store takes
 * --config, --data-dir and --store. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "core/admission.h"
#include "core/rate_lease.h"
#include "core/app.h"
#include "core/billing.h"
#include "core/billing_ledger.h"
#include "core/cluster.h"
#include "core/lease.h"
#include "core/outbox.h"
#include "core/staff.h"
#include "core/state.h"
#include "core/usage.h"
#include "core/workbench.h"
#include "gateway/gateway.h"
#include "gateway/mock_server.h"
#include "http/server.h"
#include "lib/config.h"
#include "lib/crypto.h"
#include "lib/keyfmt.h"
#include "lib/log.h"
#include "lib/mail.h"
#include "lib/money.h"
#include "lib/throttle.h"
#include "store/copy.h"
#include "store/postgres/pg.h"
#include "store/postgres/pg_migrate.h"
#include "store/store.h"

#ifndef GH_VERSION
#define GH_VERSION "0.1.0"
#endif

static const char help_text[] =
    "Usage: gatehouse COMMAND [OPTIONS]\n"
    "\n"
    "Gatehouse is an API console and metered gateway for model servers.\n"
    "\n"
    "Commands:\n"
    "  serve      Run the console (control plane) and the model API (data plane)\n"
    "  migrate    Apply pending database migrations and exit\n"
    "  credits grant --org ID --usd AMOUNT --reason TEXT\n"
    "  credits clawback --org ID --usd AMOUNT --reason TEXT\n"
    "             Give an organization credits (a new lot that expires like purchased\n"
    "             credits), or take unused credits back; recorded in the ledger and the\n"
    "             organization's audit log. A running server sees the change at once\n"
    "  ledger check [--org ID]\n"
    "             Recompute every balance from the ledger entries and compare it with the\n"
    "             credit lots, the cached balances, the usage and the invoice numbering;\n"
    "             exits 1 when anything differs\n"
    "  staff add|remove EMAIL\n"
    "             Make the account with EMAIL platform staff (it reviews limit requests and\n"
    "             sets tiers at /staff), or stop it being staff\n"
    "  store copy --from sqlite:PATH --to postgresql://USER@HOST:PORT/DATABASE\n"
    "             Copy every table of a SQLite store into an empty PostgreSQL database in\n"
    "             one transaction (migrating it first), then run the ledger check on it;\n"
    "             stop the server first. --from defaults to the configured SQLite store\n"
    "  keys verify KEY|-\n"
    "             Check offline that KEY (or a line on standard input) is a well-formed\n"
    "             Gatehouse API or admin key with a matching checksum\n"
    "  mock-upstream [--port N] [--latency-ms N] [--tokens-per-second N] ...\n"
    "             Serve the built-in mock model over HTTP (see mock-upstream --help)\n"
    "  version    Print the version and exit\n"
    "  help       Show this help\n"
    "\n"
    "Options:\n"
    "  --config FILE          Read settings from FILE (default: built-in defaults;\n"
    "                         see gatehouse.ini.example for every option)\n"
    "  --data-dir DIR         Where the database and the mail outbox live (default: var)\n"
    "  --store URL            The store: sqlite:PATH (default: sqlite:DATA_DIR/gatehouse.db)\n"
    "                         or postgresql://USER@HOST:PORT/DATABASE; every command\n"
    "                         runs on either store; wins over [store] url\n"
    "  --listen ADDR:PORT     Console and Organization API address (serve; default\n"
    "                         127.0.0.1:8080; port 0 picks a free port)\n"
    "  --api-listen ADDR:PORT Model API address (serve; default 127.0.0.1:8081)\n"
    "  -h, --help             Show this help\n";

typedef struct {
    const char *config;
    const char *data_dir;
    const char *store;
    const char *listen;
    const char *api_listen;
    const char *org;    /* credits, ledger */
    const char *usd;    /* credits */
    const char *reason; /* credits */
    const char *from;   /* store copy */
    const char *to;     /* store copy */
} cli_t;

/* Which options a command takes beyond --config and --data-dir. */
enum { ARGS_SERVE = 1, ARGS_ORG = 2, ARGS_CREDITS = 4, ARGS_COPY = 8 };

/* Reads the options after the first `skip` arguments. */
static int parse_args(int argc, char **argv, int skip, cli_t *cli, int allowed)
{
    for (int i = skip; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (!strcmp(a, "--config"))
            dst = &cli->config;
        else if (!strcmp(a, "--data-dir"))
            dst = &cli->data_dir;
        else if (!strcmp(a, "--store"))
            dst = &cli->store;
        else if ((allowed & ARGS_SERVE) && !strcmp(a, "--listen"))
            dst = &cli->listen;
        else if ((allowed & ARGS_SERVE) && !strcmp(a, "--api-listen"))
            dst = &cli->api_listen;
        else if ((allowed & ARGS_ORG) && !strcmp(a, "--org"))
            dst = &cli->org;
        else if ((allowed & ARGS_CREDITS) && !strcmp(a, "--usd"))
            dst = &cli->usd;
        else if ((allowed & ARGS_CREDITS) && !strcmp(a, "--reason"))
            dst = &cli->reason;
        else if ((allowed & ARGS_COPY) && !strcmp(a, "--from"))
            dst = &cli->from;
        else if ((allowed & ARGS_COPY) && !strcmp(a, "--to"))
            dst = &cli->to;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(help_text, stdout);
            exit(0);
        } else {
            fprintf(stderr, "gatehouse: unknown option %s (see gatehouse --help)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gatehouse: %s needs a value\n", a);
            return -1;
        }
        *dst = argv[++i];
    }
    return 0;
}

/* Loads the configuration the command line describes. */
static int load_config(const cli_t *cli, gh_config_t *cfg)
{
    char err[600];
    gh_config_defaults(cfg);
    if (cli->config && gh_config_load(cfg, cli->config, err, sizeof(err))) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return -1;
    }
    struct {
        const char *value, *section, *key, *flag;
    } overrides[] = {
        {cli->data_dir, "server", "data_dir", "--data-dir"},
        {cli->store, "store", "url", "--store"},
        {cli->listen, "server", "listen", "--listen"},
        {cli->api_listen, "server", "api_listen", "--api-listen"},
    };
    for (size_t i = 0; i < sizeof(overrides) / sizeof(overrides[0]); i++) {
        if (overrides[i].value &&
            gh_config_set(cfg, overrides[i].section, overrides[i].key, overrides[i].value, err,
                          sizeof(err))) {
            fprintf(stderr, "gatehouse: %s: %s\n", overrides[i].flag, err);
            return -1;
        }
    }
    if (gh_config_finish(cfg, err, sizeof(err))) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return -1;
    }
    gh_log_setup(cfg->log_json, (gh_log_level_t)cfg->log_level);
    /* The data directory holds emails, IP addresses, billing addresses and session tokens:
     * only its owner may read it. Every file created from here on is 0600 (SQLite's database,
     * WAL and shared-memory files included); an older directory is narrowed too. */
    umask(077);
    if (mkdir(cfg->data_dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "gatehouse: cannot create the data directory %s: %s\n", cfg->data_dir,
                strerror(errno));
        return -1;
    }
    if (chmod(cfg->data_dir, 0700))
        gh_log_warn("gatehouse: cannot make the data directory %s private (mode 0700): %s",
                    cfg->data_dir, strerror(errno));
    return 0;
}

/* Where the store is, for gh_store_open: the SQLite file, or the PostgreSQL URL. The
 * password of the latter, when [store] password_env names a variable, reaches libpq as
 * PGPASSWORD: never in the URL, never logged. (gh_store_open would refuse a backend missing
 * an operation, naming it; both backends are complete.) */
static const char *store_location(const gh_config_t *cfg)
{
    if (!cfg->store_postgres)
        return cfg->db_path;
    const char *pw = cfg->store_password_env[0] ? getenv(cfg->store_password_env) : NULL;
    if (pw && setenv("PGPASSWORD", pw, 1))
        gh_log_warn("gatehouse: cannot pass the PostgreSQL password to libpq: %s",
                    strerror(errno));
    return cfg->store_url;
}

/* gatehouse migrate --store postgresql://...: the PostgreSQL schema, under the migrations
 * runner's advisory lock. */
static int migrate_postgres(const gh_config_t *cfg)
{
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = cfg->store_url;
    opt.password = cfg->store_password_env[0] ? getenv(cfg->store_password_env) : NULL;
    char err[600], where[300];
    gh_pg_describe(cfg->store_url, where, sizeof(where));
    gh_pg_conn_t *c;
    if (gh_pg_connect(&opt, &c, err, sizeof(err))) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return 1;
    }
    int applied = 0, version = 0;
    gh_err_t rc = gh_pg_migrate(c, gh_embed_pg_migrations, &applied, &version, err,
                                sizeof(err));
    gh_pg_disconnect(c);
    if (rc) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return 1;
    }
    printf("PostgreSQL database %s is at schema version %d (%d migration%s applied now)\n",
           where, version, applied, applied == 1 ? "" : "s");
    return 0;
}

static int cmd_migrate(const cli_t *cli)
{
    gh_config_t cfg;
    if (load_config(cli, &cfg))
        return 1;
    if (cfg.store_postgres)
        return migrate_postgres(&cfg);
    char err[600];
    gh_store_t *store;
    if (gh_store_open(&store, cfg.db_path, err, sizeof(err))) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return 1;
    }
    printf("database %s is at schema version %d\n", cfg.db_path,
           gh_store_schema_version(gh_store_db(store)));
    gh_store_close(store);
    return 0;
}

/* "http://127.0.0.1:8080" for a listen address and the port actually bound. */
static void default_url(char *out, size_t size, const char *listen, int port)
{
    char host[128];
    int unused;
    if (gh_config_split_addr(listen, host, sizeof(host), &unused))
        snprintf(host, sizeof(host), "127.0.0.1");
    if (!strcmp(host, "0.0.0.0"))
        snprintf(host, sizeof(host), "127.0.0.1");
    bool v6 = strchr(host, ':') != NULL;
    snprintf(out, size, "http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* After the first SIGINT or SIGTERM, a second one stops the process at once, whatever is
 * still draining: logged, and the exit status is 128 + the signal, as a shell reports a
 * process killed by it. Nothing is lost: usage events are in the journal (replayed at the next
 * start), mail in the outbox table, and an unfinished transaction is rolled back by SQLite. */
static void *second_signal_main(void *arg)
{
    const sigset_t *sigs = arg;
    int sig = 0;
    if (sigwait(sigs, &sig) == 0) {
        gh_log_warn("gatehouse: second signal (%s): stopping at once without finishing the "
                    "requests in progress",
                    strsignal(sig));
        _exit(128 + sig);
    }
    return NULL;
}

static int cmd_serve(const cli_t *cli)
{
    static gh_config_t cfg; /* outlives every thread */
    if (load_config(cli, &cfg))
        return 1;

    /* Signals are taken by this thread alone, with sigwait; every thread started from here
     * on inherits the blocked mask. */
    static sigset_t sigs; /* outlives this frame: the second-signal thread waits on it */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    char err[600] = "";
    gh_store_t *store = NULL;
    gh_mailer_t *mailer = NULL;
    gh_throttle_t *throttle = NULL;
    gh_http_server_t *http = NULL;
    gh_gateway_t *gateway = NULL;
    gh_state_t *state = NULL;
    gh_usage_t *usage = NULL;
    gh_pay_t *pay = NULL;
    gh_billing_t *billing = NULL;
    gh_admission_t *admission = NULL;
    gh_rate_lease_t *rate_lease = NULL;
    gh_lease_t *lease = NULL;
    gh_outbox_t *outbox = NULL;
    gh_cluster_t *cluster = NULL;
    int lock_fds[2] = {-1, -1};
    gh_app_t app = {.cfg = &cfg, .now = gh_app_clock};

    /* One server per data directory (its journal) and SQLite file; then the node's id, which
     * keys its usage events: known before the journal is replayed. */
    if (gh_cluster_lock_files(&cfg, lock_fds, err, sizeof(err)) ||
        gh_cluster_node_id_resolve(&cfg, err, sizeof(err)))
        goto out;
    if (gh_store_open(&store, store_location(&cfg), err, sizeof(err)))
        goto out;
    gh_store_set_node_id(store, cfg.cluster_node_id);
    /* A backend still being ported would answer some requests "unavailable": refuse it. */
    const char *missing_op = NULL;
    if (!gh_store_ops_complete(store, &missing_op)) {
        snprintf(err, sizeof(err), "the %s store cannot serve yet: it lacks the operation %s",
                 gh_store_backend(store), missing_op);
        goto out;
    }
    if (gh_mailer_new(&mailer, &cfg, err, sizeof(err)) ||
        gh_billing_provider_new(&cfg, &pay, err, sizeof(err)))
        goto out;
    gh_store_set_busy_timeout(store, cfg.db_busy_timeout_ms);
    gh_store_set_statement_timeout(store, cfg.db_statement_timeout_ms);
    app.store = store;
    app.mailer = mailer;
    app.pay = pay;
    /* The mailer thread: it sends at once what an earlier run queued and did not send. */
    if (gh_outbox_start(&outbox, store, mailer, err, sizeof(err)))
        goto out;
    app.outbox = outbox;
    /* Billing exists before the usage writer, whose commits (the journal replay included)
     * charge the organizations' credit lots. */
    if (gh_billing_new(&billing, &app)) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    if (gh_throttle_new(&throttle) || gh_state_new(&state)) {
        snprintf(err, sizeof(err), "out of memory");
        goto out;
    }
    /* The change feed's watermark is read before the state is loaded: nothing committed
     * after the load's reads can be missed. */
    if (gh_cluster_new(&cluster, &cfg, store, err, sizeof(err)))
        goto out;
    app.cluster = cluster;
    if (gh_state_load(state, gh_store_db(store))) {
        snprintf(err, sizeof(err), "cannot load the API keys from the database");
        goto out;
    }
    char journal[GH_CONFIG_PATH + 32];
    snprintf(journal, sizeof(journal), "%s/usage.journal", cfg.data_dir);
    gh_usage_hook_t hook;
    gh_billing_usage_hook(&app, &hook);
    if (gh_usage_open(&usage, store, journal, &hook, err, sizeof(err)))
        goto out;
    app.throttle = throttle;
    app.state = state;
    app.usage = usage;
    /* Admission is loaded after the journal's replay, so replayed usage is in the balances,
     * and before the data plane starts. */
    if (gh_admission_new(&admission, &cfg, err, sizeof(err)))
        goto out;
    /* On a PostgreSQL store the engine's balances are this node's leases (core/lease.h). */
    if (cfg.store_postgres) {
        if (gh_lease_new(&lease, &cfg, gh_admission_limits(admission), store)) {
            snprintf(err, sizeof(err), "out of memory");
            goto out;
        }
        gh_admission_set_lease(admission, lease);
    }
    if (gh_admission_load(admission, gh_store_db(store))) {
        snprintf(err, sizeof(err), "cannot load the organizations' limits from the database");
        goto out;
    }
    app.admission = admission;
    /* On PostgreSQL the rate limits hold cluster-wide: the engine admits from shares of the
     * database's buckets, drawn by the rate lease thread (core/rate_lease.h). */
    if (cfg.store_postgres &&
        gh_rate_lease_start(&rate_lease, gh_admission_limits(admission), store, err,
                            sizeof(err)))
        goto out;
    app.rate_lease = rate_lease;

    if (lease && gh_lease_start(lease, err, sizeof(err)))
        goto out;

    gh_gateway_env_t env = {.state = state,
                            .usage = usage,
                            .limits = gh_admission_limits(admission),
                            .limits_enforce = cfg.limits_enforce,
                            .cluster = cluster};
    if (gh_http_bind(&http, &cfg, gh_api_handle, &app, err, sizeof(err)) ||
        gh_gateway_start(&gateway, &cfg, &env, err, sizeof(err)))
        goto out;
    if (!cfg.public_url_set)
        default_url(cfg.public_url, sizeof(cfg.public_url), cfg.listen, gh_http_port(http));
    if (!cfg.public_api_url_set)
        default_url(cfg.public_api_url, sizeof(cfg.public_api_url), cfg.api_listen,
                    gh_gateway_port(gateway));
    cfg.cookie_secure = !strncmp(cfg.public_url, "https://", 8);
    if (gh_http_start(http, err, sizeof(err)) || gh_billing_start(billing, err, sizeof(err)) ||
        gh_admission_start(admission, store, err, sizeof(err)) ||
        gh_cluster_start(cluster, &app, err, sizeof(err)))
        goto out;

    char console_addr[GH_CONFIG_STR], api_addr[GH_CONFIG_STR];
    default_url(console_addr, sizeof(console_addr), cfg.listen, gh_http_port(http));
    default_url(api_addr, sizeof(api_addr), cfg.api_listen, gh_gateway_port(gateway));
    char database[GH_CONFIG_PATH];
    if (cfg.store_postgres)
        gh_pg_describe(cfg.store_url, database, sizeof(database));
    else
        snprintf(database, sizeof(database), "%s", cfg.db_path);
    gh_log_info("gatehouse %s: console listening on %s (public URL %s, database %s, mail %s)",
                GH_VERSION, console_addr, cfg.public_url, database,
                gh_mailer_is_outbox(mailer) ? cfg.outbox_dir : "via SMTP");
    gh_log_info("gatehouse %s: model API listening on %s (public URL %s)", GH_VERSION, api_addr,
                cfg.public_api_url);

    int sig = 0;
    sigwait(&sigs, &sig);
    gh_log_info("gatehouse: %s received, finishing in-flight requests (a second signal stops "
                "at once)",
                strsignal(sig));
    pthread_t second;
    if (pthread_create(&second, NULL, second_signal_main, &sigs) == 0)
        pthread_detach(second);
    status = 0;
out:
    if (err[0])
        gh_log_error("gatehouse: %s", err);
    /* Both planes stop accepting and drain at the same time: a stop takes one grace period,
     * and the model API takes no new request while the console drains. */
    gh_http_quiesce(http);
    gh_gateway_quiesce(gateway);
    gh_http_stop(http);
    gh_gateway_stop(gateway);
    gh_cluster_stop(cluster); /* its listener publishes to the state and admission */
    gh_usage_close(usage); /* after the data plane: its last events are committed */
    gh_rate_lease_stop(rate_lease); /* after the data plane, which kicks it */
    /* After the usage writer (every cost is committed); the admission watcher, still running,
     * stops kicking it first. */
    if (admission)
        gh_admission_set_lease(admission, NULL);
    gh_lease_free(lease);
    gh_billing_free(billing); /* after everything that charges or kicks it */
    gh_admission_free(admission); /* after the data plane and billing, which publish to it */
    if (pay)
        pay->ops->destroy(pay);
    gh_outbox_stop(outbox); /* after everything that queues mail */
    gh_cluster_free(cluster); /* after the billing scheduler, which asks it who leads */
    gh_state_free(state);
    gh_throttle_free(throttle);
    gh_mailer_free(mailer);
    gh_store_close(store);
    gh_cluster_unlock_files(lock_fds);
    if (status == 0)
        gh_log_info("gatehouse: stopped cleanly");
    return status;
}

/* Opens the store for a staff command: the configuration, the database (migrated) and an
 * application without a provider or servers. */
static int staff_open(const cli_t *cli, gh_config_t *cfg, gh_app_t *app)
{
    if (load_config(cli, cfg))
        return -1;
    char err[600];
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    app->now = gh_app_clock;
    if (gh_store_open(&app->store, store_location(cfg), err, sizeof(err))) {
        fprintf(stderr, "gatehouse: %s\n", err);
        return -1;
    }
    return 0;
}

/* gatehouse credits grant|clawback --org ID --usd AMOUNT --reason TEXT */
static int cmd_credits(int argc, char **argv)
{
    static const char usage[] =
        "usage: gatehouse credits grant|clawback --org ID --usd AMOUNT --reason TEXT "
        "[--config FILE] [--data-dir DIR] [--store URL]\n";
    cli_t cli = {0};
    if (argc < 3 || (strcmp(argv[2], "grant") && strcmp(argv[2], "clawback")) ||
        parse_args(argc, argv, 3, &cli, ARGS_ORG | ARGS_CREDITS) || !cli.org || !cli.usd ||
        !cli.reason) {
        fputs(usage, stderr);
        return 2;
    }
    bool grant = !strcmp(argv[2], "grant");
    int64_t amount = 0;
    if (gh_money_parse_usd(cli.usd, &amount) || amount <= 0) {
        fprintf(stderr, "gatehouse: --usd must be a positive amount in USD, like 10 or 2.50\n");
        return 2;
    }
    gh_config_t cfg;
    gh_app_t app;
    if (staff_open(&cli, &cfg, &app))
        return 1;
    /* Staff act under their login name, which the organization's audit log shows. */
    gh_actor_t staff = {.kind = GH_ACTOR_STAFF, .role = GH_ROLE_ADMIN};
    const char *user = getenv("USER");
    snprintf(staff.id, sizeof(staff.id), "staff");
    snprintf(staff.label, sizeof(staff.label), "gatehouse credits (%s)",
             user && *user ? user : "unknown user");
    snprintf(staff.org_id, sizeof(staff.org_id), "%s", cli.org);
    snprintf(staff.ip, sizeof(staff.ip), "command line");
    char msg[600] = "", text[GH_MONEY_TEXT_MAX];
    gh_credit_lot_t lot;
    gh_err_t rc = grant ? gh_billing_grant(&app, &staff, cli.org, amount, cli.reason, &lot, msg,
                                           sizeof(msg))
                        : gh_billing_clawback(&app, &staff, cli.org, amount, cli.reason, msg,
                                              sizeof(msg));
    int status = 0;
    gh_money_format_usd(amount, text);
    if (rc) {
        fprintf(stderr, "gatehouse: %s\n", *msg ? msg : gh_err_str(rc));
        status = 1;
    } else {
        gh_billing_overview_t o;
        printf("%s $%s %s %s", grant ? "granted" : "clawed back", text, grant ? "to" : "from",
               cli.org);
        if (grant)
            printf(" (lot %s)", lot.id);
        if (!gh_billing_overview(&app, cli.org, &o)) {
            gh_money_format_usd(o.account.balance_nusd, text);
            printf("; balance now $%s", text);
        }
        printf("\n");
    }
    gh_store_close(app.store);
    return status;
}

static void print_check(void *ctx, const char *org_id, bool ok, const char *detail)
{
    (void)ctx;
    printf("%-32s %s  %s\n", org_id, ok ? "ok      " : "MISMATCH", detail);
}

/* gatehouse ledger check [--org ID] */
static int cmd_ledger(int argc, char **argv)
{
    cli_t cli = {0};
    if (argc < 3 || strcmp(argv[2], "check") || parse_args(argc, argv, 3, &cli, ARGS_ORG)) {
        fputs("usage: gatehouse ledger check [--org ID] [--config FILE] [--data-dir DIR] "
              "[--store URL]\n",
              stderr);
        return 2;
    }
    gh_config_t cfg;
    gh_app_t app;
    if (staff_open(&cli, &cfg, &app))
        return 1;
    int problems = 0;
    gh_err_t rc = gh_billing_ledger_check(&app, cli.org, print_check, NULL, &problems);
    gh_store_close(app.store);
    if (rc) {
        fprintf(stderr, "gatehouse: the ledger could not be read: %s\n", gh_err_str(rc));
        return 1;
    }
    printf("%s\n", problems ? "the ledger has differences" : "the ledger is consistent");
    return problems ? 1 : 0;
}

static void print_copied(void *ctx, const char *table, int64_t rows)
{
    (void)ctx;
    printf("copied %-28s %lld row%s\n", table, (long long)rows, rows == 1 ? "" : "s");
}

/* The ledger check of `gatehouse ledger check`, run by store copy on the copy before COMMIT. */
static gh_err_t copy_ledger_check(void *ctx, gh_db_t *db, int *problems)
{
    return gh_billing_ledger_check_db(db, NULL, print_check, ctx, problems);
}

/* gatehouse store copy --from sqlite:PATH --to postgresql://...: moving an installation. The
 * password comes from [store] password_env or libpq's own sources, never from the URL. */
static int cmd_store(int argc, char **argv)
{
    cli_t cli = {0};
    if (argc < 3 || strcmp(argv[2], "copy") || parse_args(argc, argv, 3, &cli, ARGS_COPY) ||
        !cli.to) {
        fputs("usage: gatehouse store copy [--from sqlite:PATH] --to "
              "postgresql://USER@HOST:PORT/DATABASE [--config FILE] [--data-dir DIR]\n",
              stderr);
        return 2;
    }
    if (cli.store) {
        fputs("gatehouse: store copy: use --from and --to, not --store\n", stderr);
        return 2;
    }
    gh_config_t cfg;
    if (load_config(&cli, &cfg))
        return 1;
    char err[1200];
    bool postgres = false;
    if (gh_config_store_url(cli.to, &postgres, err, sizeof(err))) {
        fprintf(stderr, "gatehouse: --to: %s\n", err);
        return 1;
    }
    if (!postgres) {
        fputs("gatehouse: --to: must be postgresql://USER@HOST:PORT/DATABASE\n", stderr);
        return 1;
    }
    const char *from = cfg.db_path;
    if (cli.from) {
        if (gh_config_store_url(cli.from, &postgres, err, sizeof(err))) {
            fprintf(stderr, "gatehouse: --from: %s\n", err);
            return 1;
        }
        if (postgres) {
            fputs("gatehouse: --from: must be sqlite:PATH\n", stderr);
            return 1;
        }
        from = cli.from + 7;
    }
    gh_pg_options_t opt;
    gh_pg_options_defaults(&opt);
    opt.url = cli.to;
    opt.password = cfg.store_password_env[0] ? getenv(cfg.store_password_env) : NULL;
    char where[300];
    gh_pg_describe(cli.to, where, sizeof(where));
    gh_store_copy_report_t report = {print_copied, copy_ledger_check, NULL};
    gh_err_t rc = gh_store_copy(from, &opt, &report, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "gatehouse: store copy: %s\n", err);
        return 1;
    }
    printf("copied %s to PostgreSQL database %s; the ledger is consistent\n", from, where);
    return 0;
}

/* gatehouse staff add|remove EMAIL */
static int cmd_staff(int argc, char **argv)
{
    cli_t cli = {0};
    if (argc < 4 || (strcmp(argv[2], "add") && strcmp(argv[2], "remove")) ||
        parse_args(argc, argv, 4, &cli, 0)) {
        fputs("usage: gatehouse staff add|remove EMAIL [--config FILE] [--data-dir DIR] "
              "[--store URL]\n",
              stderr);
        return 2;
    }
    gh_config_t cfg;
    gh_app_t app;
    if (staff_open(&cli, &cfg, &app))
        return 1;
    char msg[600] = "", by[128];
    const char *user = getenv("USER");
    snprintf(by, sizeof(by), "gatehouse staff add (%s)", user && *user ? user : "unknown user");
    bool add = !strcmp(argv[2], "add");
    gh_err_t rc = add ? gh_staff_add(&app, argv[3], by, msg, sizeof(msg))
                      : gh_staff_remove(&app, argv[3], msg, sizeof(msg));
    gh_store_close(app.store);
    if (rc) {
        fprintf(stderr, "gatehouse: %s\n", *msg ? msg : gh_err_str(rc));
        return 1;
    }
    printf("%s %s staff\n", argv[3], add ? "is now" : "is no longer");
    return 0;
}

/* gatehouse keys verify KEY|-: the checksum check a secret scanner would make, offline. */
static int cmd_keys(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[2], "verify")) {
        fprintf(stderr, "usage: gatehouse keys verify KEY   (or - to read it from standard "
                        "input)\n");
        return 2;
    }
    char line[256];
    const char *key = argv[3];
    if (!strcmp(key, "-")) {
        if (!fgets(line, sizeof(line), stdin)) {
            fprintf(stderr, "gatehouse: no key on standard input\n");
            return 2;
        }
        line[strcspn(line, "\r\n")] = '\0';
        key = line;
    }
    bool admin = !strncmp(key, GH_KEY_ADMIN_PREFIX, strlen(GH_KEY_ADMIN_PREFIX));
    const char *prefix = admin ? GH_KEY_ADMIN_PREFIX : GH_KEY_API_PREFIX;
    gh_key_check_t c = gh_key_check(key, prefix);
    if (c != GH_KEY_OK) {
        printf("not a valid Gatehouse key: %s\n", gh_key_check_str(c));
        return 1;
    }
    char hint[GH_KEY_HINT_MAX];
    gh_key_hint(hint, key, prefix);
    printf("ok: a well-formed %s key (%s), checksum matches\n", admin ? "admin" : "API", hint);
    return 0;
}

/* gatehouse mock-upstream [OPTIONS]: the mock model as a standalone HTTP server, for tests and
 * benchmarks. It takes its own options (no config file) and runs until SIGINT or SIGTERM. */
static int cmd_mock_upstream(int argc, char **argv)
{
    return gh_mock_server_main(argc - 2, argv + 2);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        fputs(help_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("gatehouse %s\n", GH_VERSION);
        return 0;
    }
    if (gh_crypto_init()) {
        fprintf(stderr, "gatehouse: cannot initialise libsodium\n");
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    cli_t cli = {0};
    int rc;
    if (!strcmp(argv[1], "serve"))
        rc = parse_args(argc, argv, 2, &cli, ARGS_SERVE) ? 2 : cmd_serve(&cli);
    else if (!strcmp(argv[1], "migrate"))
        rc = parse_args(argc, argv, 2, &cli, 0) ? 2 : cmd_migrate(&cli);
    else if (!strcmp(argv[1], "credits"))
        rc = cmd_credits(argc, argv);
    else if (!strcmp(argv[1], "ledger"))
        rc = cmd_ledger(argc, argv);
    else if (!strcmp(argv[1], "keys"))
        rc = cmd_keys(argc, argv);
    else if (!strcmp(argv[1], "staff"))
        rc = cmd_staff(argc, argv);
    else if (!strcmp(argv[1], "store"))
        rc = cmd_store(argc, argv);
    else if (!strcmp(argv[1], "mock-upstream"))
        rc = cmd_mock_upstream(argc, argv);
    else {
        fprintf(stderr, "gatehouse: unknown command %s (see gatehouse --help)\n", argv[1]);
        rc = 2;
    }
    gh_workbench_forget(); /* no Workbench secret outlives the process in its memory */
    curl_global_cleanup();
    return rc;
}
