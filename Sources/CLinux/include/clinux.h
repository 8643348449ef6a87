#ifndef COURSEPACK_CLINUX_H
#define COURSEPACK_CLINUX_H

/// Swaps two paths atomically (Linux renameat2 with RENAME_EXCHANGE): both must exist. Returns 0,
/// or -1 with errno set (EINVAL or ENOSYS where the file system or kernel cannot exchange).
int cp_rename_exchange(const char *a, const char *b);

/// Renames `from` to `to` unless `to` exists (RENAME_NOREPLACE). Returns 0, or -1 with errno set.
int cp_rename_noreplace(const char *from, const char *to);

#endif
