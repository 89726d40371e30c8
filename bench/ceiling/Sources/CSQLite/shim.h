#ifndef MERCATO_BENCH_CSQLITE_SHIM_H
#define MERCATO_BENCH_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
