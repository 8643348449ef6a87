#ifndef COURSEPACK_CLINUX_H
#define COURSEPACK_CLINUX_H

/// Swaps two paths atomically (Linux renameat2 with RENAME_EXCHANGE): both must exist. Returns 0,
/// or -1 with errno set (EINVAL or ENOSYS where the file system or kernel cannot exchange).
int cp_rename_exchange(const char *a, const char *b);

/// Renames `from` to `to` unless `to` exists (RENAME_NOREPLACE). Returns 0, or -1 with errno set.
int cp_rename_noreplace(const char *from, const char *to);

/// What a run needs to know of an open file: its kind and identity.
struct cp_file_info {
    /// 'f' regular file, 'd' folder, 'p' FIFO, 'c'/'b' device, 's' socket, 'l' link, '?' other.
    char kind;
    unsigned long long device;
    unsigned long long inode;
    long long size;
    long long modified_ns;
};

/// fstat(2) of `fd` into `info`. Returns 0, or -1 with errno set.
int cp_file_info(int fd, struct cp_file_info *info);

#endif
