/* The PostgreSQL store's mail outbox (src/store/postgres/outbox.c) against a real
 * PostgreSQL 15: claims with a lease, retries, the next due time to the millisecond, released
 * claims, and two threads claiming at once never getting the same mail. */
#include "pg_fixture.h"

#include <pthread.h>

#define T0 1700000000123ll /* epoch ms, with milliseconds to check they survive */

static void test_outbox_claims(void **state)
{
    pgf_t *f = *state;
    int64_t due = 0;
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_ENOTFOUND);
    assert_int_equal(gh_store_outbox_add(f->db, "a@x.test", "First", "Body one", T0), GH_OK);
    assert_int_equal(gh_store_outbox_add(f->db, "b@x.test", "Second", "Body two", T0 + 5), GH_OK);
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_OK);
    assert_int_equal(due, T0);

    /* Not due yet. */
    gh_outbox_row_t row;
    assert_int_equal(gh_store_outbox_claim(f->db, T0 - 1, 60000, &row), GH_ENOTFOUND);
    /* The oldest first, leased for a minute. */
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 10, 60000, &row), GH_OK);
    int64_t first = row.id;
    assert_string_equal(row.recipient, "a@x.test");
    assert_string_equal(row.subject, "First");
    assert_string_equal(row.body, "Body one");
    assert_int_equal(row.attempts, 0);
    gh_store_outbox_row_free(&row);
    assert_false(gh_store_in_transaction(f->db));
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 20, 60000, &row), GH_OK);
    int64_t second = row.id;
    assert_string_equal(row.subject, "Second");
    gh_store_outbox_row_free(&row);
    /* Both claimed: nothing left until a lease runs out. */
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 30, 60000, &row), GH_ENOTFOUND);
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_OK);
    assert_int_equal(due, T0 + 10 + 60000);

    /* The first is sent: its body is emptied and it is never claimed again. */
    assert_int_equal(gh_store_outbox_sent(f->db, first, T0 + 40), GH_OK);
    char v[64];
    pgf_value(f, "SELECT body || '|' || attempts FROM mail_outbox ORDER BY id LIMIT 1", v,
              sizeof(v));
    assert_string_equal(v, "|1");
    /* The second failed: retried at its next attempt, with the error kept. */
    assert_int_equal(gh_store_outbox_failed(f->db, second, T0 + 90000, "421 try later"), GH_OK);
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_OK);
    assert_int_equal(due, T0 + 90000);
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 89999, 60000, &row), GH_ENOTFOUND);
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 90000, 60000, &row), GH_OK);
    assert_int_equal(row.id, second);
    assert_int_equal(row.attempts, 1);
    gh_store_outbox_row_free(&row);
    pgf_value(f, "SELECT last_error FROM mail_outbox ORDER BY id DESC LIMIT 1", v, sizeof(v));
    assert_string_equal(v, "421 try later");

    /* A sender that died: its lease lapses, or a restart releases every claim at once. */
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 90000 + 60000, 60000, &row), GH_OK);
    assert_int_equal(row.id, second);
    gh_store_outbox_row_free(&row);
    assert_int_equal(gh_store_outbox_release_claims(f->db), GH_OK);
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_OK);
    assert_int_equal(due, T0 + 90000);
    assert_int_equal(gh_store_outbox_claim(f->db, T0 + 90000, 60000, &row), GH_OK);
    assert_int_equal(row.id, second);
    assert_int_equal(gh_store_outbox_sent(f->db, row.id, T0 + 90001), GH_OK);
    gh_store_outbox_row_free(&row);
    assert_int_equal(gh_store_outbox_next_due(f->db, &due), GH_ENOTFOUND);
}

/* ---- two senders at once ---- */

#define MAILS 40

typedef struct {
    gh_store_t *store;
    int64_t ids[MAILS + 1]; /* room for one claim too many, which the test would catch */
    int n;
    gh_err_t last;
} sender_t;

static void *sender(void *p)
{
    sender_t *s = p;
    gh_db_t *db = gh_store_db(s->store); /* this thread's own connection */
    gh_outbox_row_t row;
    while (s->n <= MAILS && (s->last = gh_store_outbox_claim(db, T0, 600000, &row)) == GH_OK) {
        s->ids[s->n++] = row.id;
        gh_store_outbox_row_free(&row);
    }
    return NULL;
}

static void test_outbox_two_senders(void **state)
{
    pgf_t *f = *state;
    for (int i = 0; i < MAILS; i++)
        assert_int_equal(gh_store_outbox_add(f->db, "a@x.test", "S", "B", T0), GH_OK);
    sender_t a = {.store = f->store}, b = {.store = f->store};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, sender, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, sender, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(a.last, GH_ENOTFOUND);
    assert_int_equal(b.last, GH_ENOTFOUND);
    /* Every mail claimed exactly once between them. */
    assert_int_equal(a.n + b.n, MAILS);
    bool seen[MAILS + 1] = {false};
    int64_t base = pgf_num(f, "SELECT min(id) FROM mail_outbox") - 1;
    for (int i = 0; i < a.n + b.n; i++) {
        int64_t id = (i < a.n ? a.ids[i] : b.ids[i - a.n]) - base;
        assert_true(id >= 1 && id <= MAILS);
        assert_false(seen[id]);
        seen[id] = true;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_claims, pgf_setup, pgf_teardown),
        cmocka_unit_test_setup_teardown(test_outbox_two_senders, pgf_setup, pgf_teardown),
    };
    return pgf_run_both(tests);
}
