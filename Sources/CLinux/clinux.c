#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include "clinux.h"

int cp_rename_exchange(const char *a, const char *b) {
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

int cp_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}

int cp_file_info(int fd, struct cp_file_info *info) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -1;
    switch (st.st_mode & S_IFMT) {
    case S_IFREG: info->kind = 'f'; break;
    case S_IFDIR: info->kind = 'd'; break;
    case S_IFIFO: info->kind = 'p'; break;
    case S_IFCHR: info->kind = 'c'; break;
    case S_IFBLK: info->kind = 'b'; break;
    case S_IFSOCK: info->kind = 's'; break;
    case S_IFLNK: info->kind = 'l'; break;
    default: info->kind = '?';
    }
    info->device = (unsigned long long)st.st_dev;
    info->inode = (unsigned long long)st.st_ino;
    info->size = (long long)st.st_size;
    info->modified_ns = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    return 0;
}
