#ifndef COURSEPACK_CLINUX_H
#define COURSEPACK_CLINUX_H

/// Swaps two paths atomically (Linux renameat2 with RENAME_EXCHANGE): both must exist. Returns 0,
/// or -1 with errno set (EINVAL or ENOSYS where the file system or kernel cannot exchange).
int cp_rename_exchange(const char *a, const char *b);

/// Renames `from` to `to` unless `to` exists (RENAME_NOREPLACE). Returns 0, or -1 with errno set.
int cp_rename_noreplace(const char *from, const char *to);

/// SIGINT and SIGTERM set a process-wide flag (and are unblocked, since a parent may have started
/// the process with them blocked); FFmpeg's interrupt callbacks (CFFmpegShims) honour it.
void cp_signals_install(void);
/// The signal number received, or 0.
int cp_signal_received(void);

/// A worker process asks for SIGKILL when its parent dies (prctl is variadic, so Swift cannot call
/// it); returns 0 if the parent `parent_pid` is already gone.
int cp_die_with_parent(int parent_pid);

/// The pipeline's allocator settings (glibc): at most two malloc arenas, where glibc makes up to eight
/// per core, one for each thread that allocates while the others hold theirs, each keeping what was
/// freed in it; and blocks of 1 MB or more (a 720p picture) from mmap, returned when freed, at a fixed
/// threshold (glibc's own rises to the largest mmapped block freed, up to 32 MB, and pictures then
/// stay in the arenas). Peak RSS on the bench lecture 355 MB -> 321 MB (BENCHMARKS.md, 2026-12-07,
/// "the allocator"). Returns 0 when glibc refused a setting.
int cp_malloc_tune(void);

#endif
