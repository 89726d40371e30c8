// The part of the system SQLite's C API (Debian's libsqlite3-dev, linked through pkg-config)
// that MercatoStorage calls. Declared here rather than through <sqlite3.h>: SQLiteNIO, still in
// the build, carries a newer bundled copy of that header whose structs differ, and Clang refuses
// two definitions of one struct in one Swift module. Names of our own (the functions keep the
// library's symbols; the handles are opaque either way).
#ifndef CMERCATO_SQLITE_H
#define CMERCATO_SQLITE_H

typedef struct mercato_sqlite3 mercato_sqlite3;
typedef struct mercato_sqlite3_stmt mercato_sqlite3_stmt;

#define MERCATO_SQLITE_OK 0
#define MERCATO_SQLITE_MISUSE 21
#define MERCATO_SQLITE_ROW 100
#define MERCATO_SQLITE_DONE 101
#define MERCATO_SQLITE_INTEGER 1
#define MERCATO_SQLITE_FLOAT 2
#define MERCATO_SQLITE_TEXT 3
#define MERCATO_SQLITE_BLOB 4
#define MERCATO_SQLITE_NULL 5
#define MERCATO_SQLITE_OPEN_READWRITE 0x00000002
#define MERCATO_SQLITE_OPEN_CREATE 0x00000004
#define MERCATO_SQLITE_OPEN_NOMUTEX 0x00008000
#define MERCATO_SQLITE_PREPARE_PERSISTENT 0x01
#define MERCATO_SQLITE_UTF8 1
#define MERCATO_SQLITE_STMTSTATUS_REPREPARE 5

int sqlite3_libversion_number(void);
int sqlite3_config(int option, ...);
long long sqlite3_memory_used(void);

#define MERCATO_SQLITE_CONFIG_MEMSTATUS 9

// Turns off SQLite's memory statistics for the process (before its first connection; SQLite
// answers MISUSE once it is initialized). With them on, every allocation and free inside SQLite
// takes one global mutex to count it: the request threads and the writer queued on it (most of
// the server's futex calls under load). Nothing in Mercato reads the statistics or sets a soft
// heap limit, which needs them. (A variadic C function: Swift cannot call it directly.)
static inline int mercato_sqlite3_disable_memstatus(void) {
    return sqlite3_config(MERCATO_SQLITE_CONFIG_MEMSTATUS, 0);
}
int sqlite3_open_v2(const char *filename, mercato_sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(mercato_sqlite3 *db);
const char *sqlite3_errmsg(mercato_sqlite3 *db);
int sqlite3_prepare_v3(mercato_sqlite3 *db, const char *sql, int bytes, unsigned int flags,
                       mercato_sqlite3_stmt **statement, const char **tail);
int sqlite3_finalize(mercato_sqlite3_stmt *statement);
int sqlite3_reset(mercato_sqlite3_stmt *statement);
int sqlite3_clear_bindings(mercato_sqlite3_stmt *statement);
int sqlite3_step(mercato_sqlite3_stmt *statement);
int sqlite3_stmt_status(mercato_sqlite3_stmt *statement, int counter, int reset);
int sqlite3_get_autocommit(mercato_sqlite3 *db);

int sqlite3_bind_int64(mercato_sqlite3_stmt *statement, int index, long long value);
int sqlite3_bind_double(mercato_sqlite3_stmt *statement, int index, double value);
int sqlite3_bind_null(mercato_sqlite3_stmt *statement, int index);
int sqlite3_bind_zeroblob(mercato_sqlite3_stmt *statement, int index, int bytes);
int sqlite3_bind_text64(mercato_sqlite3_stmt *statement, int index, const char *text, unsigned long long bytes,
                        void (*destructor)(void *), unsigned char encoding);
int sqlite3_bind_blob64(mercato_sqlite3_stmt *statement, int index, const void *bytes, unsigned long long count,
                        void (*destructor)(void *));

// SQLite copies the value before the call returns (SQLITE_TRANSIENT).
static inline int mercato_sqlite3_bind_text(mercato_sqlite3_stmt *statement, int index, const char *text, unsigned long long bytes) {
    return sqlite3_bind_text64(statement, index, text, bytes, (void (*)(void *))-1, MERCATO_SQLITE_UTF8);
}
static inline int mercato_sqlite3_bind_blob(mercato_sqlite3_stmt *statement, int index, const void *bytes, unsigned long long count) {
    return sqlite3_bind_blob64(statement, index, bytes, count, (void (*)(void *))-1);
}

int sqlite3_column_count(mercato_sqlite3_stmt *statement);
const char *sqlite3_column_name(mercato_sqlite3_stmt *statement, int column);
int sqlite3_column_type(mercato_sqlite3_stmt *statement, int column);
long long sqlite3_column_int64(mercato_sqlite3_stmt *statement, int column);
double sqlite3_column_double(mercato_sqlite3_stmt *statement, int column);
const unsigned char *sqlite3_column_text(mercato_sqlite3_stmt *statement, int column);
const void *sqlite3_column_blob(mercato_sqlite3_stmt *statement, int column);
int sqlite3_column_bytes(mercato_sqlite3_stmt *statement, int column);

#endif
