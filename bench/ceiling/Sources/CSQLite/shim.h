#ifndef MERCATO_BENCH_CSQLITE_SHIM_H
#define MERCATO_BENCH_CSQLITE_SHIM_H
#include <sqlite3.h>
// As Mercato configures SQLite (MercatoStorage's CMercatoSQLite): no memory statistics, whose
// global mutex every allocation inside SQLite would take. sqlite3_config is variadic.
static inline int floor_sqlite3_disable_memstatus(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
