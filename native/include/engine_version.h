/* Version of the native engine interface. */
#ifndef ENGINE_VERSION_H
#define ENGINE_VERSION_H

#define ENGINE_VERSION_MAJOR 0
#define ENGINE_VERSION_MINOR 7
#define ENGINE_VERSION_PATCH 0

#endif /* ENGINE_VERSION_H */
