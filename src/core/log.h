/*
 * log.h - leveled logging to stderr.
 *
 * One line per message: an ISO-8601 UTC time, the level, the thread's name
 * and the text. Writes are a single write(2) of a formatted line, so lines
 * from several threads never interleave. Logging is for events (start,
 * stop, errors, connection failures), never per request.
 */
#ifndef DISTRO_CORE_LOG_H
#define DISTRO_CORE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_level_max;

/* Parses "error", "warn", "info", "debug". 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/* Names the calling thread in its log lines (up to 15 bytes). */
void log_thread_name(const char *name);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_level_max >= LOG_DEBUG)                                                    \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                           \
	} while (0)

#endif
