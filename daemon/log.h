/* The daemon's log: one line per message on stderr (journald adds the time when
 * run under systemd; in the foreground a timestamp is prefixed). */
#ifndef VED_LOG_H
#define VED_LOG_H

enum ved_log_level { VED_LOG_ERROR, VED_LOG_WARN, VED_LOG_INFO, VED_LOG_DEBUG };

void ved_log_set_level(enum ved_log_level level);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int ved_log_level_parse(const char *s);
void ved_log(enum ved_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) ved_log(VED_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  ved_log(VED_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ved_log(VED_LOG_INFO, __VA_ARGS__)
#define log_debug(...) ved_log(VED_LOG_DEBUG, __VA_ARGS__)

#endif
