/* The usage journal on a real SQLite file: a process that dies without closing (a child that
 * _exits) loses no event and none is counted twice at the next start, through rotation of a
 * small journal, growth of the current one while the old is still needed, and wrap-around
 * to the start of the file once everything in it is committed, and reuse of the file rotated
 * away once it is all committed (the spare); a database locked by another
 * connection delays commits without dropping an event; a damaged record costs that record
 * only, and the damaged file is kept aside. */
#include "unit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "core/usage.h"
#include "lib/crypto.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char db_path[128];
    char journal[128];
} world_t;

static int setup(void **state)
{
    world_t *w = calloc(1, sizeof(*w));
    snprintf(w->dir, sizeof(w->dir), "/tmp/gh-unit-usage-XXXXXX");
    if (w == NULL || !mkdtemp(w->dir))
        return -1;
    snprintf(w->db_path, sizeof(w->db_path), "%s/gatehouse.db", w->dir);
    snprintf(w->journal, sizeof(w->journal), "%s/usage.journal", w->dir);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world_t *w = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->dir);
    int rc = system(cmd);
    free(w);
    return rc == 0 ? 0 : -1;
}

static void make_event(gh_usage_event_t *ev, int i)
{
    memset(ev, 0, sizeof(*ev));
    snprintf(ev->request_id, sizeof(ev->request_id), "req_test_%06d", i);
    ev->created_at_ms = 1764000000000 + i;
    snprintf(ev->org_id, sizeof(ev->org_id), "org_test");
    snprintf(ev->model, sizeof(ev->model), "gatehouse-mock-small");
    snprintf(ev->route, sizeof(ev->route), "messages");
    ev->input_tokens = 10;
    ev->output_tokens = i;
    ev->cost_nusd = 1000 + i;
    ev->status = 200;
}

/* Waits for the child `pid`, which must have exited with 0. */
static void child_done(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* In a child: opens the store and the journal, submits events [from, to), waits for the
 * writer when `flush_after` is reached, and dies without closing anything. */
static void child_submits(const world_t *w, int from, int to, int flush_after)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[256];
        gh_store_t *store;
        gh_usage_t *u;
        if (gh_store_open(&store, w->db_path, err, sizeof(err)) ||
            gh_usage_open(&u, store, w->journal, NULL, err, sizeof(err)))
            _exit(2);
        for (int i = from; i < to; i++) {
            gh_usage_event_t ev;
            make_event(&ev, i);
            if (gh_usage_submit(u, &ev))
                _exit(3);
            if (i + 1 == flush_after)
                gh_usage_flush(u);
        }
        _exit(0); /* no close, no flush: like SIGKILL after the last response */
    }
    child_done(pid);
}

/* Opens and closes the journal in this process, which replays what the child left. */
static void restart(const world_t *w)
{
    char err[256];
    gh_store_t *store;
    gh_usage_t *u;
    assert_int_equal(gh_store_open(&store, w->db_path, err, sizeof(err)), GH_OK);
    assert_int_equal(gh_usage_open(&u, store, w->journal, NULL, err, sizeof(err)), GH_OK);
    gh_usage_close(u);
    gh_store_close(store);
}

/* Events in the database: how many, how many distinct request ids, the sum of costs. */
static void count(const world_t *w, int64_t *rows, int64_t *distinct, int64_t *cost)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(w->db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*), count(DISTINCT request_id), "
                                        "coalesce(sum(cost_nusd), 0) FROM usage_events",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    *rows = sqlite3_column_int64(st, 0);
    *distinct = sqlite3_column_int64(st, 1);
    *cost = sqlite3_column_int64(st, 2);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static int64_t expected_cost(int n)
{
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += 1000 + i;
    return sum;
}

static void survives_a_crash_through_rotation_and_growth(void **state)
{
    world_t *w = *state;
    /* Room for about 20 records: 3,000 events rotate once and then grow the new file. */
    gh_usage_journal_bytes = 20 * 1024;
    child_submits(w, 0, 3000, -1);
    restart(w);
    int64_t rows, distinct, cost;
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 3000);
    assert_int_equal(distinct, 3000);
    assert_int_equal(cost, expected_cost(3000));
    /* A second start finds nothing left to replay and changes nothing. */
    restart(w);
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 3000);
}

static void wraps_without_replaying_twice(void **state)
{
    world_t *w = *state;
    gh_usage_journal_bytes = 64 * 1024;
    /* 50 events committed (the journal wraps to its start), then 20 more over the first
     * of them, then death: the 30 committed records after the new ones are not counted
     * again, and the 20 are not lost. */
    child_submits(w, 0, 70, 50);
    restart(w);
    int64_t rows, distinct, cost;
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 70);
    assert_int_equal(distinct, 70);
    assert_int_equal(cost, expected_cost(70));
}

/* In a child: opens the store (its busy timeout short, so the writer's commits fail at once
 * while `*lock` holds the database's write lock), takes that lock on a connection of its own,
 * then opens the journal. Exits the child on failure. */
static gh_usage_t *child_open_locked(const world_t *w, sqlite3 **lock)
{
    char err[256];
    gh_store_t *store;
    gh_usage_t *u;
    if (gh_store_open(&store, w->db_path, err, sizeof(err)))
        _exit(2);
    gh_store_set_busy_timeout(store, 20);
    if (sqlite3_open(w->db_path, lock) != SQLITE_OK ||
        sqlite3_busy_timeout(*lock, 10000) != SQLITE_OK ||
        sqlite3_exec(*lock, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        _exit(4);
    if (gh_usage_open(&u, store, w->journal, NULL, err, sizeof(err)))
        _exit(2);
    return u;
}

/* In a child: opens the store and the journal, then holds the database's write lock on a
 * connection of its own, so the writer can commit nothing (its busy timeout is short), submits
 * events [0, n) and dies. Every event is then only in the journal, in sequence order. */
static void child_submits_locked(const world_t *w, int n)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *lock;
        gh_usage_t *u = child_open_locked(w, &lock);
        for (int i = 0; i < n; i++) {
            gh_usage_event_t ev;
            make_event(&ev, i);
            if (gh_usage_submit(u, &ev))
                _exit(3);
        }
        /* The writer keeps failing and retrying; nothing is dropped or committed. */
        gh_usage_stats_t st;
        gh_usage_stats(u, &st);
        if (st.committed != 0 || st.queue_depth != (uint64_t)n)
            _exit(5);
        _exit(0);
    }
    child_done(pid);
}

/* The name of the file `prefix`* in the world's directory, if exactly one exists. */
static bool find_aside(const world_t *w, const char *prefix, char *out, size_t out_size)
{
    DIR *d = opendir(w->dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (!strncmp(e->d_name, prefix, strlen(prefix))) {
            snprintf(out, out_size, "%s/%.100s", w->dir, e->d_name);
            found++;
        }
    closedir(d);
    return found == 1;
}

/* Leaves a journal of `n` uncommitted records (a child that could not commit them) and opens
 * it for update; `magic` and `size` are the first record's (records have a fixed size,
 * written in each header). */
static FILE *uncommitted_journal(const world_t *w, int n, uint32_t *magic, long *size)
{
    gh_usage_journal_bytes = 64 * 1024;
    child_submits_locked(w, n);
    FILE *f = fopen(w->journal, "r+b");
    assert_non_null(f);
    uint32_t head[2];
    assert_int_equal(fread(head, sizeof(head), 1, f), 1);
    *magic = head[0];
    *size = (long)head[1];
    return f;
}

static void keeps_a_damaged_journal_aside_and_replays_the_rest(void **state)
{
    world_t *w = *state;
    uint32_t magic;
    long size;
    FILE *f = uncommitted_journal(w, 30, &magic, &size);
    /* Damage the 15th record. */
    assert_true(size > 64);
    assert_int_equal(fseek(f, 14 * size + size - 16, SEEK_SET), 0);
    assert_int_equal(fputc(0x5A, f), 0x5A);
    assert_int_equal(fclose(f), 0);

    restart(w);
    int64_t rows, distinct, cost;
    count(w, &rows, &distinct, &cost);
    /* Every intact record, the ones after the damaged one included. */
    assert_int_equal(rows, 29);
    assert_int_equal(distinct, 29);
    assert_int_equal(cost, expected_cost(30) - (1000 + 14));
    /* The damaged file is kept aside whole, and a fresh journal replaces it. */
    char aside[256];
    assert_true(find_aside(w, "usage.journal.damaged-", aside, sizeof(aside)));
    struct stat st;
    assert_int_equal(stat(aside, &st), 0);
    assert_true(st.st_size >= 30 * size);
    restart(w);
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 29);
    assert_true(find_aside(w, "usage.journal.damaged-", aside, sizeof(aside)));
}

/* A journal written by the previous version (records "GHU3", checksummed with zlib's CRC-32
 * instead of CRC-32C, same layout) is replayed whole after an upgrade. The test writes one by
 * rewriting the header of each record of a journal this version left uncommitted. */
static void replays_a_journal_the_previous_version_wrote(void **state)
{
    world_t *w = *state;
    uint32_t magic;
    long size;
    FILE *f = uncommitted_journal(w, 30, &magic, &size);
    assert_int_equal(magic, 0x47485534u); /* "GHU4" */
    const size_t header = 24; /* magic, size, seq, crc, pad; then the event */
    assert_int_equal(size, header + sizeof(gh_usage_event_t));
    size_t rec_size = (size_t)size;
    unsigned char *rec = malloc(rec_size);
    assert_non_null(rec);
    for (long i = 0; i < 30; i++) {
        assert_int_equal(fseek(f, i * size, SEEK_SET), 0);
        assert_int_equal(fread(rec, rec_size, 1, f), 1);
        uint32_t v3 = 0x47485533u, crc = (uint32_t)crc32(0L, rec + header, rec_size - header);
        memcpy(rec, &v3, 4);
        memcpy(rec + 16, &crc, 4);
        assert_int_equal(fseek(f, i * size, SEEK_SET), 0);
        assert_int_equal(fwrite(rec, rec_size, 1, f), 1);
    }
    free(rec);
    assert_int_equal(fclose(f), 0);

    restart(w);
    int64_t rows, distinct, cost;
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 30);
    assert_int_equal(distinct, 30);
    assert_int_equal(cost, expected_cost(30));
    char aside[256];
    assert_false(find_aside(w, "usage.journal.damaged-", aside, sizeof(aside)));
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static bool exists(const world_t *w, const char *suffix)
{
    char path[160];
    snprintf(path, sizeof(path), "%s%s", w->journal, suffix);
    return access(path, F_OK) == 0;
}

/* In a child, on a journal of 25 records: the first file fills while the database is locked
 * and is rotated away; once its events are committed it becomes the spare; the second file
 * fills while the database is locked again, and the rotation makes the first file (the same
 * inode: its pages still mapped) the journal again. Then the child dies with 30 events
 * uncommitted, in the old file and at the start of the reused one, in front of the reused
 * file's committed records. */
static void child_reuses_the_spare(const world_t *w)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sqlite3 *lock;
        gh_usage_t *u = child_open_locked(w, &lock);
        /* Held open, so that its inode number is not given to a new file. */
        int first_fd = open(w->journal, O_RDONLY);
        struct stat first_st;
        if (first_fd < 0 || fstat(first_fd, &first_st) != 0)
            _exit(9);
        ino_t first = first_st.st_ino;
        for (int i = 0; i < 30; i++) {
            gh_usage_event_t ev;
            make_event(&ev, i);
            if (gh_usage_submit(u, &ev))
                _exit(3);
        }
        if (!exists(w, ".1") || inode_of(w->journal) == first)
            _exit(5); /* the first file was not rotated away */
        if (sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
            _exit(4);
        gh_usage_flush(u);
        /* One more commit: the writer trims the journal after a commit, so after this one's
         * the first commit's trimming is done. */
        gh_usage_event_t ev;
        make_event(&ev, 30);
        if (gh_usage_submit(u, &ev))
            _exit(3);
        gh_usage_flush(u);
        if (exists(w, ".1") || !exists(w, ".spare"))
            _exit(6); /* the committed old file did not become the spare */
        if (sqlite3_exec(lock, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
            _exit(4);
        for (int i = 31; i < 61; i++) {
            make_event(&ev, i);
            if (gh_usage_submit(u, &ev))
                _exit(3);
        }
        if (inode_of(w->journal) != first || exists(w, ".spare") || !exists(w, ".1"))
            _exit(7); /* the rotation did not reuse the spare */
        gh_usage_stats_t st;
        gh_usage_stats(u, &st);
        if (st.committed != 31 || st.queue_depth != 30)
            _exit(8);
        _exit(0);
    }
    child_done(pid);
}

static void reuses_the_spare_file_and_replays_only_its_new_records(void **state)
{
    world_t *w = *state;
    gh_usage_journal_bytes = 20 * 1024;
    child_reuses_the_spare(w);
    restart(w);
    int64_t rows, distinct, cost;
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 61);
    assert_int_equal(distinct, 61);
    assert_int_equal(cost, expected_cost(61));
    char aside[256];
    assert_false(find_aside(w, "usage.journal.damaged-", aside, sizeof(aside)));
    assert_false(exists(w, ".1"));
    assert_false(exists(w, ".spare"));
    restart(w);
    count(w, &rows, &distinct, &cost);
    assert_int_equal(rows, 61);
}

/* Keys key_1 .. key_n, straight into the table (foreign keys are off on a plain connection:
 * the keys need no organization here). */
static void insert_keys(sqlite3 *db, int n)
{
    for (int k = 1; k <= n; k++) {
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "INSERT INTO keys (id, kind, org_id, workspace_id, name, key_hash, hint, "
                 "status, created_by_type, created_by_id, created_at) VALUES ('key_%d', 'api', "
                 "'org_test', 'ws_test', 'k', 'hash_%d', 'h', 'active', 'user', 'acc', 1)",
                 k, k);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
}

/* A store and a usage writer on the world's database, with `keys` keys (key_1 ...) in it; the
 * returned handle reads the same file. */
static sqlite3 *open_writer(world_t *w, int keys, gh_store_t **store, gh_usage_t **u)
{
    char err[256];
    assert_int_equal(gh_store_open(store, w->db_path, err, sizeof(err)), GH_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(w->db_path, &db), SQLITE_OK);
    insert_keys(db, keys);
    assert_int_equal(gh_usage_open(u, *store, w->journal, NULL, err, sizeof(err)), GH_OK);
    return db;
}

/* The writer records each key's last use, once per key and batch, at its latest event; a
 * key with no event keeps none, an event of an unknown key changes nothing. */
static void records_the_keys_last_use(void **state)
{
    world_t *w = *state;
    gh_store_t *store;
    gh_usage_t *u;
    sqlite3 *db = open_writer(w, 3, &store, &u);
    const char *owner[] = {"key_1", "key_2", "key_1", "key_unknown", "key_2", "key_1"};
    for (int i = 0; i < 6; i++) {
        gh_usage_event_t ev;
        make_event(&ev, i);
        ev.created_at_ms = 1764000000000 + i * 1000;
        snprintf(ev.key_id, sizeof(ev.key_id), "%s", owner[i]);
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
    }
    gh_usage_flush(u);
    gh_usage_close(u);
    gh_store_close(store);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT group_concat(id || '=' || "
                                        "coalesce(last_used_at, 'none'), ',') FROM "
                                        "(SELECT id, last_used_at FROM keys ORDER BY id)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0),
                        "key_1=1764000005,key_2=1764000004,key_3=none");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* key_N's last_used_at as the database has it, 0 when none. */
static int64_t last_used(sqlite3 *db, int k)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT coalesce(last_used_at, 0) FROM keys WHERE id = 'key_%d'",
             k);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* A key's use is written at most once a minute of event time: its first use at once, a use
 * less than 60 s after the last written one is skipped, one 60 s after is written; another
 * key's first use in the same minute is written. Each batch is committed before the next. */
static void touches_a_key_at_most_once_a_minute(void **state)
{
    world_t *w = *state;
    gh_store_t *store;
    gh_usage_t *u;
    sqlite3 *db = open_writer(w, 2, &store, &u);
    const int64_t t0 = 1764000000;
    const struct {
        int key;
        int64_t at_s;
        int64_t key1_after, key2_after; /* last_used_at once committed */
    } steps[] = {
        {1, t0, t0, 0},                 /* the first use: written */
        {1, t0 + 30, t0, 0},            /* 30 s later: skipped */
        {2, t0 + 59, t0, t0 + 59},      /* another key's first use: written */
        {1, t0 + 59, t0, t0 + 59},      /* 59 s after the written one: skipped */
        {1, t0 + 60, t0 + 60, t0 + 59}, /* 60 s after: written */
        {2, t0 + 100, t0 + 60, t0 + 59},
        {2, t0 + 119, t0 + 60, t0 + 119},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        gh_usage_event_t ev;
        make_event(&ev, (int)i);
        ev.created_at_ms = steps[i].at_s * 1000 + 500;
        snprintf(ev.key_id, sizeof(ev.key_id), "key_%d", steps[i].key);
        assert_int_equal(gh_usage_submit(u, &ev), GH_OK);
        gh_usage_flush(u);
        assert_int_equal(last_used(db, 1), steps[i].key1_after);
        assert_int_equal(last_used(db, 2), steps[i].key2_after);
    }
    gh_usage_close(u);
    gh_store_close(store);
    sqlite3_close(db);
}

int main(void)
{
    if (gh_crypto_init())
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(survives_a_crash_through_rotation_and_growth, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(wraps_without_replaying_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(reuses_the_spare_file_and_replays_only_its_new_records,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(records_the_keys_last_use, setup, teardown),
        cmocka_unit_test_setup_teardown(touches_a_key_at_most_once_a_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(keeps_a_damaged_journal_aside_and_replays_the_rest,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(replays_a_journal_the_previous_version_wrote, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
