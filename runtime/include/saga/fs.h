/* fs.h - What a participant needs of the file system besides its store:
 * the runtime creates its data directory so, and services their own (a
 * mail spool), as does the fleet launcher its home. */
#ifndef SAGA_FS_H
#define SAGA_FS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Creates dir and each missing parent (mode 0755), as `mkdir -p`: 0 when
 * dir exists afterwards, else an errno (ENAMETOOLONG beyond PATH_MAX). */
int saga_mkdir_p(const char *dir);

#ifdef __cplusplus
}
#endif

#endif
