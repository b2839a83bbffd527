/* semihost.h - the few Arm semihosting calls the demo needs (QEMU: -semihosting-config enable=on),
 * and a tiny formatter, so the firmware links no stdio and no heap. */
#ifndef OFA_FW_SEMIHOST_H
#define OFA_FW_SEMIHOST_H

#include <stddef.h>
#include <stdint.h>

void sh_write(const char* s);                     /* SYS_WRITE0 */
void sh_exit(int code) __attribute__((noreturn)); /* SYS_EXIT_EXTENDED: QEMU exits with `code` */

/* Line builder: append text and numbers to a fixed buffer, then sh_line() prints it with "\n". */
typedef struct sh_buf {
  char text[160];
  size_t len;
} sh_buf;
void sh_str(sh_buf* b, const char* s);
void sh_u64(sh_buf* b, uint64_t v);
void sh_i64(sh_buf* b, int64_t v);
void sh_f32(sh_buf* b, float v); /* 6 significant digits, exponent form; for reports only */
void sh_line(sh_buf* b);
void sh_str_u64(sh_buf* b, const char* s, uint64_t v); /* s, then v */

/* " key=value" for each field: the machine-readable report lines (bench/firmware.py parses them). */
typedef struct sh_field {
  const char* key;
  uint64_t value;
} sh_field;
void sh_fields(sh_buf* b, const sh_field* fields, size_t count);

#endif
