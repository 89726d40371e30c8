#ifndef MERCATO_BENCH_CSODIUM_SHIM_H
#define MERCATO_BENCH_CSODIUM_SHIM_H
#include <sodium.h>
#endif
