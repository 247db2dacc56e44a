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

#include "lib/crypto.h"
#include "lib/log.h"

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

/* Formats the whole message (headers, blank line, body with CRLF line ends) into a malloc'd
 * buffer the caller frees. No dot-stuffing here: libcurl does it on the SMTP wire, and the
 * .eml files hold the message as it is. */
static char *format_message(gh_mailer_t *m, const char *to, const char *subject_in,
                            const char *body, size_t *len_out)
{
    char subject[GH_MAIL_SUBJECT_MAX];
    if (encode_subject(subject_in, subject, sizeof(subject)))
        return NULL;
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char msgid[32];
    gh_random_base62(msgid, 24);
    const char *domain = strchr(m->from_addr, '@');

    size_t cap = strlen(body) * 2 + 2048;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    int n = snprintf(buf, cap,
                     "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
                     "Message-ID: <%s%s>\r\nMIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n\r\n",
                     m->cfg->mail_from, to, subject, date, msgid, domain ? domain : "@localhost");
    if (n < 0 || (size_t)n >= cap) {
        free(buf);
        return NULL;
    }
    size_t o = (size_t)n;
    for (const char *p = body; *p; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r'))
            buf[o++] = '\r';
        buf[o++] = *p;
    }
    if (o < 2 || buf[o - 1] != '\n') {
        buf[o++] = '\r';
        buf[o++] = '\n';
    }
    buf[o] = '\0';
    *len_out = o;
    return buf;
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
    if (gh_mail_check(to, subject))
        return GH_EINVAL;
    size_t len;
    char *msg = format_message(m, to, subject, body, &len);
    if (!msg)
        return GH_ENOMEM;
    gh_err_t rc = gh_mailer_is_outbox(m) ? write_outbox(m, msg, len, to)
                                         : send_smtp(m, msg, len, to);
    free(msg);
    return rc;
}
