#include "semihost.h"

enum { SYS_WRITE0 = 0x04, SYS_EXIT_EXTENDED = 0x20, ADP_STOPPED_APPLICATION_EXIT = 0x20026 };

static int semihost_call(int op, const void* arg) {
  register int r0 __asm__("r0") = op;
  register const void* r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

void sh_write(const char* s) { semihost_call(SYS_WRITE0, s); }

void sh_exit(int code) {
  const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
  semihost_call(SYS_EXIT_EXTENDED, block);
  for (;;) {
  }
}

void sh_str(sh_buf* b, const char* s) {
  while (*s && b->len + 1 < sizeof b->text) b->text[b->len++] = *s++;
  b->text[b->len] = 0;
}

void sh_u64(sh_buf* b, uint64_t v) {
  char digits[21];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  char out[21];
  for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  out[n] = 0;
  sh_str(b, out);
}

void sh_i64(sh_buf* b, int64_t v) {
  if (v < 0) {
    sh_str(b, "-");
    sh_u64(b, (uint64_t)(-(v + 1)) + 1);
  } else {
    sh_u64(b, (uint64_t)v);
  }
}

void sh_f32(sh_buf* b, float v) {
  if (v != v) {
    sh_str(b, "nan");
    return;
  }
  if (v < 0) {
    sh_str(b, "-");
    v = -v;
  }
  if (v > 3.4e38f) {
    sh_str(b, "inf");
    return;
  }
  int e = 0;
  double x = v;
  if (x != 0.0) {
    while (x >= 10.0) { x /= 10.0; ++e; }
    while (x < 1.0) { x *= 10.0; --e; }
  }
  uint64_t m = (uint64_t)(x * 100000.0 + 0.5); /* 6 significant digits */
  if (m >= 1000000) { m /= 10; ++e; }
  char s[16];
  s[0] = (char)('0' + m / 100000);
  s[1] = '.';
  for (int i = 0; i < 5; ++i) s[2 + i] = (char)('0' + (m / (uint64_t[]){10000, 1000, 100, 10, 1}[i]) % 10);
  s[7] = 'e';
  s[8] = 0;
  sh_str(b, s);
  sh_i64(b, e);
}

void sh_str_u64(sh_buf* b, const char* s, uint64_t v) {
  sh_str(b, s);
  sh_u64(b, v);
}

void sh_fields(sh_buf* b, const sh_field* fields, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    sh_str(b, " ");
    sh_str(b, fields[i].key);
    sh_str(b, "=");
    sh_u64(b, fields[i].value);
  }
}

void sh_line(sh_buf* b) {
  sh_str(b, "\n");
  sh_write(b->text);
  b->len = 0;
  b->text[0] = 0;
}
