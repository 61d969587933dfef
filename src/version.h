#ifndef SERAI_VERSION_H
#define SERAI_VERSION_H
#define SERAI_VERSION "0.1.0"
#endif
