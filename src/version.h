#ifndef SERAI_VERSION_H
#define SERAI_VERSION_H
/*
 * The version is meson.build's, the project's only one (the Debian
 * package's changelog is checked against it): meson passes it in.
 */
#ifndef SERAI_VERSION
#error "SERAI_VERSION is set by meson.build"
#endif
#endif
