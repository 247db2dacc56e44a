#include "lib/mail.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/log.h"
#include "lib/mailhtml.h"

#define GH_MAIL_SUBJECT_MAX 2048 /* the encoded Subject header */

struct gh_mailer {
    const gh_config_t *cfg;
    atomic_uint seq;
    atomic_bool cancelled; /* gh_mailer_cancel: SMTP transfers stop */
    char from_addr[GH_CONFIG_STR]; /* bare address out of "Name <addr>" */
};

static gh_err_t mkdir_p(const char *path)
{
    char tmp[GH_CONFIG_PATH];
    int n = snprintf(tmp, sizeof(tmp), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return GH_EINVAL;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return GH_EIO;
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST)
        return GH_EIO;
    return GH_OK;
}

gh_err_t gh_mailer_new(gh_mailer_t **out, const gh_config_t *cfg, char *err, size_t err_size)
{
    gh_mailer_t *m = calloc(1, sizeof(*m));
    if (!m)
        return GH_ENOMEM;
    m->cfg = cfg;
    const char *lt = strchr(cfg->mail_from, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt > lt + 1)
        snprintf(m->from_addr, sizeof(m->from_addr), "%.*s", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(m->from_addr, sizeof(m->from_addr), "%s", cfg->mail_from);
    if (!cfg->smtp_url[0] && mkdir_p(cfg->outbox_dir)) {
        snprintf(err, err_size, "cannot create the outbox folder %s: %s", cfg->outbox_dir,
                 strerror(errno));
        free(m);
        return GH_EIO;
    }
    if (!cfg->smtp_url[0] && chmod(cfg->outbox_dir, 0700)) /* its mail holds sign-in links */
        gh_log_warn("mail: cannot make the outbox folder %s private (mode 0700): %s",
                    cfg->outbox_dir, strerror(errno));
    *out = m;
    return GH_OK;
}

void gh_mailer_free(gh_mailer_t *m)
{
    free(m);
}

bool gh_mailer_is_outbox(const gh_mailer_t *m)
{
    return !m->cfg->smtp_url[0];
}

/* The Subject header's value: `s` itself when it is printable ASCII, else RFC 2047
 * encoded-words ("=?UTF-8?B?...?="), each at most 75 characters and holding whole UTF-8
 * characters, folded onto continuation lines. GH_ETOOBIG when it does not fit `out`. */
static gh_err_t encode_subject(const char *s, char *out, size_t out_size)
{
    size_t len = strlen(s);
    bool plain = true;
    for (size_t i = 0; i < len && plain; i++)
        plain = s[i] >= 0x20 && s[i] < 0x7F;
    /* "=?" followed by anything would be read as an encoded-word: encode it too. */
    if (plain && !strstr(s, "=?")) {
        if (len >= out_size)
            return GH_ETOOBIG;
        memcpy(out, s, len + 1);
        return GH_OK;
    }
    static const char pre[] = "=?UTF-8?B?", post[] = "?=";
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        /* 45 bytes make 60 base64 characters: 72 with the markers. */
        size_t n = len - i < 45 ? len - i : 45;
        while (n > 0 && i + n < len && ((unsigned char)s[i + n] & 0xC0) == 0x80)
            n--; /* never split a character */
        if (n == 0)
            n = len - i < 45 ? len - i : 45;
        size_t b64 = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
        size_t need = (o ? 3 : 0) + sizeof(pre) - 1 + b64 - 1 + sizeof(post) - 1 + 1;
        if (o + need > out_size)
            return GH_ETOOBIG;
        if (o) {
            memcpy(out + o, "\r\n ", 3);
            o += 3;
        }
        memcpy(out + o, pre, sizeof(pre) - 1);
        o += sizeof(pre) - 1;
        sodium_bin2base64(out + o, b64, (const unsigned char *)s + i, n,
                          sodium_base64_VARIANT_ORIGINAL);
        o += b64 - 1;
        memcpy(out + o, post, sizeof(post) - 1);
        o += sizeof(post) - 1;
        out[o] = '\0';
        i += n;
    }
    if (o == 0)
        out[0] = '\0';
    return GH_OK;
}

#define GH_MAIL_MESSAGE_MAX (4 * 1024 * 1024)

/* Whether `s` can go as 7bit: ASCII without control characters but tab and line breaks,
 * lines of at most 998 bytes. */
static bool is_7bit(const char *s)
{
    size_t line = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n') {
            line = 0;
            continue;
        }
        if (*p >= 0x80 || (*p < 0x20 && *p != '\t' && *p != '\r') || *p == 0x7F || ++line > 998)
            return false;
    }
    return true;
}

/* Appends `s` with CRLF line ends (a lone LF becomes CRLF). */
static void put_crlf(gh_buf_t *b, const char *s)
{
    const char *from = s;
    for (const char *p = s; *p; p++) {
        if (*p != '\n' || (p > s && p[-1] == '\r'))
            continue;
        gh_buf_put_n(b, from, (size_t)(p - from));
        gh_buf_put(b, "\r\n");
        from = p + 1;
    }
    gh_buf_put(b, from);
}

/* Appends `s` quoted-printable (RFC 2045 6.7): CRLF line ends, lines of at most 76
 * characters with soft breaks, '=', non-ASCII and control bytes as =XX, a space or tab before
 * a line end encoded. */
static void put_qp(gh_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\n') {
            gh_buf_put(b, "\r\n");
            col = 0;
            continue;
        }
        char enc[4];
        size_t n;
        bool end = p[1] == '\0' || p[1] == '\n' || (p[1] == '\r' && p[2] == '\n');
        if ((*p >= 33 && *p <= 126 && *p != '=') || ((*p == ' ' || *p == '\t') && !end)) {
            enc[0] = (char)*p;
            n = 1;
        } else {
            enc[0] = '=';
            enc[1] = hex[*p >> 4];
            enc[2] = hex[*p & 15];
            n = 3;
        }
        if (col + n > 75) { /* room for the soft break's '=' */
            gh_buf_put(b, "=\r\n");
            col = 0;
        }
        gh_buf_put_n(b, enc, n);
        col += n;
    }
}

/* One body part: its headers, a blank line, `s` in the transfer encoding it needs, and a
 * closing line break. */
static void put_part(gh_buf_t *b, const char *type, const char *s)
{
    bool plain = is_7bit(s);
    gh_buf_put(b, "Content-Type: ");
    gh_buf_put(b, type);
    gh_buf_put(b, "; charset=utf-8\r\nContent-Transfer-Encoding: ");
    gh_buf_put(b, plain ? "7bit" : "quoted-printable");
    gh_buf_put(b, "\r\n\r\n");
    if (plain)
        put_crlf(b, s);
    else
        put_qp(b, s);
    if (b->len < 2 || b->p[b->len - 1] != '\n')
        gh_buf_put(b, "\r\n");
}

/* Formats the whole message: headers, then multipart/alternative with the text part and the
 * HTML part (in that order: clients show the last part they can), CRLF line ends. Into a
 * malloc'd buffer the caller frees. No dot-stuffing here: libcurl does it on the SMTP wire,
 * and the .eml files hold the message as it is. */
static char *format_message(gh_mailer_t *m, const char *to, const char *subject_in,
                            const char *body, const char *html, size_t *len_out)
{
    char subject[GH_MAIL_SUBJECT_MAX];
    if (encode_subject(subject_in, subject, sizeof(subject)))
        return NULL;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char msgid[32], boundary[40];
    gh_random_base62(msgid, 24);
    /* "=_" never occurs in quoted-printable text, so no part can contain the boundary. */
    memcpy(boundary, "=_gh", 4);
    gh_random_base62(boundary + 4, 24);
    const char *domain = strchr(m->from_addr, '@');

    gh_buf_t b;
    gh_buf_init(&b, GH_MAIL_MESSAGE_MAX);
    char head[GH_MAIL_SUBJECT_MAX + 1024 + GH_CONFIG_STR];
    int n = snprintf(head, sizeof(head),
                     "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                     "Message-ID: <%s%s>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                     "This is a message in two formats: text and HTML.\r\n\r\n--%s\r\n",
                     m->cfg->mail_from, to, subject, date, msgid, domain ? domain : "@localhost",
                     boundary, boundary);
    if (n < 0 || (size_t)n >= sizeof(head))
        return NULL;
    gh_buf_put(&b, head);
    put_part(&b, "text/plain", body);
    gh_buf_put(&b, "\r\n--");
    gh_buf_put(&b, boundary);
    gh_buf_put(&b, "\r\n");
    put_part(&b, "text/html", html);
    gh_buf_put(&b, "\r\n--");
    gh_buf_put(&b, boundary);
    gh_buf_put(&b, "--\r\n");
    size_t len = b.len;
    char *msg = gh_buf_take(&b);
    if (msg)
        *len_out = len;
    return msg;
}

static gh_err_t write_outbox(gh_mailer_t *m, const char *msg, size_t len, const char *to)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char rnd[9];
    gh_random_base62(rnd, 8);
    char path[GH_CONFIG_PATH + 64], tmp[GH_CONFIG_PATH + 80];
    unsigned seq = atomic_fetch_add(&m->seq, 1);
    /* Named so that a plain sort lists messages in the order they were sent. */
    snprintf(path, sizeof(path), "%s/%013lld-%06u-%s.eml", m->cfg->outbox_dir,
             (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, seq % 1000000, rnd);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out_fail;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, msg + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            goto out_fail;
        }
        off += (size_t)w;
    }
    /* Written under a temporary name and renamed, so a reader never sees half a message. */
    if (close(fd) || rename(tmp, path)) {
        unlink(tmp);
        goto out_fail;
    }
    gh_log_info("mail: to %s written to %s", to, path);
    return GH_OK;
out_fail:
    gh_log_error("mail: cannot write to the outbox %s: %s", m->cfg->outbox_dir, strerror(errno));
    return GH_EIO;
}

typedef struct {
    const char *data;
    size_t len, off;
} upload_t;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *user)
{
    upload_t *u = user;
    size_t room = size * nmemb, left = u->len - u->off;
    size_t n = left < room ? left : room;
    memcpy(dst, u->data + u->off, n);
    u->off += n;
    return n;
}

/* libcurl's progress callback: a non-zero return aborts the transfer. */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const gh_mailer_t *m = user;
    return atomic_load(&m->cancelled) ? 1 : 0;
}

void gh_mailer_cancel(gh_mailer_t *m)
{
    atomic_store(&m->cancelled, true);
}

static gh_err_t send_smtp(gh_mailer_t *m, const char *msg, size_t len, const char *to)
{
    CURL *c = curl_easy_init();
    if (!c)
        return GH_ENOMEM;
    gh_err_t rc = GH_OK;
    upload_t up = {msg, len, 0};
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    if (!rcpt) {
        rc = GH_ENOMEM;
        goto out_cleanup;
    }
    curl_easy_setopt(c, CURLOPT_URL, m->cfg->smtp_url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, m->from_addr);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->cfg->smtp_timeout_ms);
    curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (m->cfg->smtp_user[0]) {
        const char *pw = getenv(m->cfg->smtp_password_env);
        curl_easy_setopt(c, CURLOPT_USERNAME, m->cfg->smtp_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pw ? pw : "");
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        gh_log_error("mail: SMTP delivery to %s failed: %s", to, curl_easy_strerror(cc));
        rc = cc == CURLE_OPERATION_TIMEDOUT ? GH_ETIMEOUT : GH_EIO;
    } else {
        gh_log_info("mail: to %s sent through SMTP", to);
    }
out_cleanup:
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    return rc;
}

gh_err_t gh_mail_check(const char *to, const char *subject)
{
    return strpbrk(to, "\r\n<>,;") || strpbrk(subject, "\r\n") ? GH_EINVAL : GH_OK;
}

gh_err_t gh_mail_send(gh_mailer_t *m, const char *to, const char *subject, const char *body)
{
    return gh_mail_send_alt(m, to, subject, body, NULL);
}

gh_err_t gh_mail_send_alt(gh_mailer_t *m, const char *to, const char *subject, const char *body,
                          const char *html)
{
    if (gh_mail_check(to, subject))
        return GH_EINVAL;
    char *made = NULL;
    if (!html) {
        gh_err_t rc = gh_mailhtml_render(m->cfg->product_name, subject, body, NULL, NULL, &made);
        if (rc)
            return rc;
        html = made;
    }
    size_t len;
    char *msg = format_message(m, to, subject, body, html, &len);
    free(made);
    if (!msg)
        return GH_ENOMEM;
    gh_err_t rc = gh_mailer_is_outbox(m) ? write_outbox(m, msg, len, to)
                                         : send_smtp(m, msg, len, to);
    free(msg);
    return rc;
}
