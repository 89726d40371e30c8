#ifndef MERCATO_CSODIUM_SHIM_H
#define MERCATO_CSODIUM_SHIM_H
#include <sodium.h>
#endif
