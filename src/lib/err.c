#include "lib/err.h"

static const char *const names[] = {
#define GH_ERR_NAME(name, msg) #name,
    GH_ERR_MAP(GH_ERR_NAME)
#undef GH_ERR_NAME
};

static const char *const messages[] = {
#define GH_ERR_MSG(name, msg) msg,
    GH_ERR_MAP(GH_ERR_MSG)
#undef GH_ERR_MSG
};

const char *gh_err_name(gh_err_t err)
{
    return (unsigned)err < GH_ERR_COUNT ? names[err] : "GH_E?";
}

const char *gh_err_str(gh_err_t err)
{
    return (unsigned)err < GH_ERR_COUNT ? messages[err] : "unknown error";
}

static _Thread_local bool db_unavailable;

void gh_err_note_db_unavailable(void)
{
    db_unavailable = true;
}

void gh_err_clear_db_unavailable(void)
{
    db_unavailable = false;
}

bool gh_err_db_unavailable(void)
{
    return db_unavailable;
}
