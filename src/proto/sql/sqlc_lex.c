/* sqlc_lex.c - the SQL classifier's tokenizer (MySQL and PostgreSQL).
 *
 * Blanks and comments are skipped; everything else becomes one token whose
 * bytes the caller can look at. Every loop advances pos, and the only
 * searches (closing comment, closing dollar tag) start where the scan is,
 * so a pass over the input is O(n). Errors (an unterminated string, quoted
 * identifier, dollar quote or comment) are sticky and end the token stream. */
#include "proto/sql/sqlc_int.h"

#include <string.h>

static inline int is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Letters, '_' and every byte >= 0x80 (UTF-8 letters, and anything else:
 * invalid sequences are just identifier bytes). MySQL also allows '$'. */
static inline int ident_start(const struct sqlc_lex *lx, uint8_t c)
{
    uint8_t l = c | 0x20;
    return (l >= 'a' && l <= 'z') || c == '_' || c >= 0x80 ||
           (c == '$' && lx->dialect == SQLC_MYSQL);
}

static inline int ident_char(uint8_t c)
{
    uint8_t l = c | 0x20;
    return (l >= 'a' && l <= 'z') || c == '_' || c >= 0x80 || is_digit(c) || c == '$';
}

void sqlc_lex_init(struct sqlc_lex *lx, enum sqlc_dialect d, unsigned modes, const char *s,
                   size_t n)
{
    memset(lx, 0, sizeof(*lx));
    lx->s = (const uint8_t *)s;
    lx->n = s ? n : 0;
    lx->dialect = (uint8_t)d;
    lx->modes = modes;
}

static void skip_line(struct sqlc_lex *lx)
{
    const uint8_t *nl = memchr(lx->s + lx->pos, '\n', lx->n - lx->pos);
    lx->pos = nl ? (size_t)(nl - lx->s) + 1 : lx->n;
}

/* Block comment starting at pos ("/" "*"). MySQL: no nesting; a "!" or
 * "M!" right after the opener makes it an executable comment whose body is
 * code (its optional version number is skipped). PostgreSQL: nested. */
static int skip_block_comment(struct sqlc_lex *lx)
{
    const uint8_t *s = lx->s;
    size_t n = lx->n, p = lx->pos + 2;
    if (lx->dialect == SQLC_MYSQL) {
        if (!lx->exec && p < n && (s[p] == '!' || (s[p] == 'M' && p + 1 < n && s[p + 1] == '!'))) {
            p += s[p] == '!' ? 1 : 2;
            for (int k = 0; k < 6 && p < n && is_digit(s[p]); k++) p++;
            lx->exec = 1;
            lx->pos = p;
            return 0;
        }
        const uint8_t *e = memmem(s + p, n - p, "*/", 2);
        if (!e) return -1;
        lx->pos = (size_t)(e - s) + 2;
        return 0;
    }
    size_t depth = 1;
    while (p + 1 < n) {
        if (s[p] == '/' && s[p + 1] == '*') {
            depth++;
            p += 2;
        } else if (s[p] == '*' && s[p + 1] == '/') {
            p += 2;
            if (--depth == 0) {
                lx->pos = p;
                return 0;
            }
        } else {
            p++;
        }
    }
    return -1;
}

/* Skips blanks and comments; -1 on an unterminated comment. */
static int skip_blank(struct sqlc_lex *lx)
{
    const uint8_t *s = lx->s;
    size_t n = lx->n;
    while (lx->pos < n) {
        uint8_t c = s[lx->pos];
        if (is_space(c)) {
            lx->pos++;
        } else if (c == '#' && lx->dialect == SQLC_MYSQL) {
            skip_line(lx);
        } else if (c == '-' && lx->pos + 1 < n && s[lx->pos + 1] == '-' &&
                   (lx->dialect == SQLC_POSTGRES || lx->pos + 2 >= n || s[lx->pos + 2] <= ' ')) {
            skip_line(lx);
        } else if (c == '/' && lx->pos + 1 < n && s[lx->pos + 1] == '*') {
            if (skip_block_comment(lx) < 0) return -1;
        } else if (c == '*' && lx->exec && lx->pos + 1 < n && s[lx->pos + 1] == '/') {
            lx->exec = 0;
            lx->pos += 2;
        } else {
            break;
        }
    }
    return 0;
}

/* Quoted run whose opening quote q is just before pos: q q is a literal q,
 * and with bs a backslash escapes the next byte. */
static int skip_quoted(struct sqlc_lex *lx, uint8_t q, int bs)
{
    const uint8_t *s = lx->s;
    size_t n = lx->n, i = lx->pos;
    while (i < n) {
        uint8_t c = s[i];
        if (c == q) {
            if (i + 1 < n && s[i + 1] == q) {
                i += 2;
                continue;
            }
            lx->pos = i + 1;
            return 0;
        }
        i += (bs && c == '\\') ? 2 : 1;
    }
    lx->pos = n;
    return -1;
}

static int quoted(struct sqlc_lex *lx, struct sqlc_tok *t, int kind, uint8_t q, int bs)
{
    t->kind = (uint8_t)kind;
    t->quote = q;
    t->bs = (uint8_t)bs;
    t->body = lx->pos;
    if (skip_quoted(lx, q, bs) < 0) {
        lx->err = 1;
        return SQLC_TK_EOF;
    }
    t->len = lx->pos - t->off;
    return kind;
}

/* At '$' (PostgreSQL): "$1" parameter, "$tag$...$tag$" / "$$...$$" string,
 * otherwise a lone '$' punctuation byte. */
static int dollar(struct sqlc_lex *lx, struct sqlc_tok *t)
{
    const uint8_t *s = lx->s;
    size_t n = lx->n, p = lx->pos + 1;
    if (p < n && is_digit(s[p])) {
        while (p < n && is_digit(s[p])) p++;
        lx->pos = p;
        t->kind = SQLC_TK_PARAM;
        t->len = p - t->off;
        return SQLC_TK_PARAM;
    }
    if (p < n && s[p] != '$' && ident_start(lx, s[p]))
        while (p < n && (ident_start(lx, s[p]) || is_digit(s[p]))) p++;
    if (p < n && s[p] == '$') {
        size_t taglen = p + 1 - lx->pos;
        const uint8_t *tag = s + lx->pos;
        const uint8_t *e = memmem(s + p + 1, n - p - 1, tag, taglen);
        t->kind = SQLC_TK_STRING;
        t->quote = '$';
        t->bs = 0;
        t->body = p + 1;
        if (!e) {
            lx->pos = n;
            lx->err = 1;
            return SQLC_TK_EOF;
        }
        lx->pos = (size_t)(e - s) + taglen;
        t->len = lx->pos - t->off;
        return SQLC_TK_STRING;
    }
    lx->pos++;
    t->kind = SQLC_TK_PUNCT;
    t->len = 1;
    return SQLC_TK_PUNCT;
}

int sqlc_lex_next(struct sqlc_lex *lx, struct sqlc_tok *t)
{
    memset(t, 0, sizeof(*t));
    if (lx->err) return SQLC_TK_EOF;
    if (skip_blank(lx) < 0) {
        lx->err = 1;
        lx->pos = lx->n;
        return SQLC_TK_EOF;
    }
    const uint8_t *s = lx->s;
    size_t n = lx->n, p = lx->pos;
    t->off = p;
    if (p >= n) {
        if (lx->exec) lx->err = 1; /* executable comment never closed */
        return SQLC_TK_EOF;
    }
    uint8_t c = s[p];
    int my = lx->dialect == SQLC_MYSQL;
    int my_bs = !(lx->modes & SQLC_MODE_NO_BACKSLASH_ESCAPES);
    int pg_bs = (lx->modes & SQLC_MODE_PG_BACKSLASH_STRINGS) != 0;

    if (ident_start(lx, c)) {
        size_t e = p + 1;
        while (e < n && ident_char(s[e])) e++;
        if (!my && e == p + 1 && e < n) {
            uint8_t l = c | 0x20;
            if (l == 'e' && s[e] == '\'') { /* E'...' */
                lx->pos = e + 1;
                return quoted(lx, t, SQLC_TK_STRING, '\'', 1);
            }
            if (l == 'u' && s[e] == '&' && e + 1 < n && (s[e + 1] == '\'' || s[e + 1] == '"')) {
                uint8_t q = s[e + 1];
                lx->pos = e + 2;
                return quoted(lx, t, q == '"' ? SQLC_TK_QIDENT : SQLC_TK_STRING, q, 0);
            }
        }
        lx->pos = e;
        t->kind = SQLC_TK_WORD;
        t->len = e - p;
        return SQLC_TK_WORD;
    }
    if (is_digit(c)) {
        size_t e = p + 1;
        while (e < n && (ident_char(s[e]) || s[e] == '.')) e++;
        lx->pos = e;
        t->kind = SQLC_TK_NUMBER;
        t->len = e - p;
        return SQLC_TK_NUMBER;
    }
    lx->pos = p + 1;
    switch (c) {
    case '\'':
        return quoted(lx, t, SQLC_TK_STRING, c, my ? my_bs : pg_bs);
    case '"':
        if (!my || (lx->modes & SQLC_MODE_ANSI_QUOTES)) return quoted(lx, t, SQLC_TK_QIDENT, c, 0);
        return quoted(lx, t, SQLC_TK_STRING, c, my_bs);
    case '`':
        if (my) return quoted(lx, t, SQLC_TK_QIDENT, c, 0);
        break;
    case '$':
        if (!my) {
            lx->pos = p;
            return dollar(lx, t);
        }
        break;
    case '@':
        if (my) {
            size_t e = p + 1;
            if (e < n && s[e] == '@') e++;
            if (e < n && (s[e] == '\'' || s[e] == '"' || s[e] == '`')) {
                lx->pos = e + 1;
                if (skip_quoted(lx, s[e], s[e] != '`' && my_bs) < 0) {
                    lx->err = 1;
                    return SQLC_TK_EOF;
                }
                e = lx->pos;
            } else {
                while (e < n && (ident_char(s[e]) || s[e] == '.')) e++;
            }
            lx->pos = e;
            t->kind = SQLC_TK_VAR;
            t->len = e - p;
            return SQLC_TK_VAR;
        }
        break;
    case '?':
        t->kind = SQLC_TK_PARAM;
        t->len = 1;
        return SQLC_TK_PARAM;
    case ':':
        if (p + 1 < n && (s[p + 1] == '=' || s[p + 1] == ':')) {
            lx->pos = p + 2;
            t->kind = SQLC_TK_PUNCT;
            t->len = 2;
            return SQLC_TK_PUNCT;
        }
        break;
    default:
        break;
    }
    t->kind = SQLC_TK_PUNCT;
    t->len = 1;
    return SQLC_TK_PUNCT;
}
