/* sqlc_int.h - internals shared by the SQL classifier's files: the token
 * stream of sqlc_lex.c and the keyword table of sqlc.c (exposed so the unit
 * test can check that the table is sorted). Not part of the API. */
#ifndef STRAND_SQLC_INT_H
#define STRAND_SQLC_INT_H

#include "proto/sql/sqlc.h"

enum sqlc_tok_kind {
    SQLC_TK_EOF = 0, /* end of input, or a lexing error (lx->err set) */
    SQLC_TK_WORD,    /* unquoted identifier or keyword */
    SQLC_TK_QIDENT,  /* quoted identifier: `x`, "x" (PostgreSQL, ANSI_QUOTES), U&"x" */
    SQLC_TK_STRING,  /* string literal of any kind, dollar quotes included */
    SQLC_TK_NUMBER,
    SQLC_TK_VAR,     /* MySQL @x, @@x, @@session.x */
    SQLC_TK_PARAM,   /* ?, $1 */
    SQLC_TK_PUNCT,   /* one byte, or ":=" / "::" */
};

struct sqlc_tok {
    uint8_t kind;  /* SQLC_TK_* */
    uint8_t quote; /* QIDENT/STRING: the quote byte ('\'', '"', '`', '$') */
    uint8_t bs;    /* QIDENT/STRING: backslash escapes apply inside */
    size_t off;    /* token bytes: s[off, off + len) */
    size_t len;
    size_t body;   /* QIDENT/STRING: offset of the first byte after the opening quote */
};

/* Lexer state: small and copyable, so a copy is a lookahead checkpoint. */
struct sqlc_lex {
    const uint8_t *s;
    size_t n, pos;
    uint8_t dialect; /* enum sqlc_dialect */
    uint8_t exec;    /* inside a MySQL executable comment */
    uint8_t err;     /* unterminated quote or comment: sticky */
    unsigned modes;  /* SQLC_MODE_* */
};

/* Borrows s for the lexer's lifetime; fills the caller's *lx. */
void sqlc_lex_init(struct sqlc_lex *lx, enum sqlc_dialect d, unsigned modes, const char *s,
                   size_t n);

/* Next token into the caller's *t; returns its kind (SQLC_TK_EOF at the end
 * or after an error). Borrows lx. */
int sqlc_lex_next(struct sqlc_lex *lx, struct sqlc_tok *t);

struct sqlc_kw {
    const char *name; /* upper case */
    uint8_t id;
    uint8_t flags;
};
extern const struct sqlc_kw sqlc_keywords[];
extern const size_t sqlc_nkeywords;

#endif
