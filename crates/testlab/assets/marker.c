/*
 * memlens test-lab marker process (compiled with `gcc -static` by the testlab crate).
 *
 * 1. Puts known strings in its heap, in an anonymous mmap (one per page, each page starting
 *    with its index), and finds the ones in argv / the environment.
 * 2. Resolves every string's physical address with /proc/self/pagemap (the guest runs it as
 *    root, so PFNs are visible).
 * 3. Takes the in-guest ground truth itself (process list, modules, kallsyms, its own maps,
 *    iomem) without forking, so the snapshot is not polluted by short-lived helpers, and
 *    prints it to stdout (the serial console) between delimiter lines.
 * 4. Busy-spins forever with an occasional sched_yield(), so that when the guest is stopped
 *    the vCPU is usually running this process (QMP CR3 / gva2gpa then use its page tables).
 *
 * Output grammar (one record per line, fields separated by one space):
 *   ===TESTLAB-BEGIN <section>===  ...  ===TESTLAB-END <section>===   ===TESTLAB-READY===
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MMAP_PAGES 8
#define HEAP_STRINGS 2

static int pagemap_fd = -1;

static unsigned long pagemap_pa(const void *va)
{
    long ps = sysconf(_SC_PAGESIZE);
    uint64_t entry = 0;
    uintptr_t v = (uintptr_t)va;
    if (pagemap_fd < 0)
        return 0;
    if (pread(pagemap_fd, &entry, sizeof entry, (off_t)(v / ps) * 8) != sizeof entry)
        return 0;
    if (!((entry >> 63) & 1))
        return 0;
    entry &= (1ULL << 55) - 1;
    if (entry == 0)
        return 0;
    return (unsigned long)(entry * ps + v % ps);
}

static void item(const char *kind, int index, const char *s)
{
    printf("item %s %d 0x%lx 0x%lx %s\n", kind, index, (unsigned long)(uintptr_t)s,
           pagemap_pa(s), s);
}

static void begin(const char *name) { printf("===TESTLAB-BEGIN %s===\n", name); }
static void end(const char *name) { printf("===TESTLAB-END %s===\n", name); fflush(stdout); }

/* Copies a text file to stdout line by line; lines are passed through `keep` if given. */
static void cat_file(const char *path, int (*keep)(const char *line))
{
    char line[4096];
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("error cannot-open %s\n", path);
        return;
    }
    while (fgets(line, sizeof line, f)) {
        if (keep && !keep(line))
            continue;
        fputs(line, stdout);
        if (!strchr(line, '\n'))
            putchar('\n');
    }
    fclose(f);
}

static const char *wanted_syms[] = {
    "_text", "_stext", "_etext", "_sdata", "_edata", "_end", "init_task", "init_mm",
    "init_top_pgt", "swapper_pg_dir", "init_level4_pgt", "page_offset_base", "vmemmap_base",
    "vmalloc_base", "phys_base", "__start_BTF", "__stop_BTF", "__start___ksymtab",
    "__stop___ksymtab", "__start___ksymtab_gpl", "__start___ksymtab_strings", "linux_banner",
    "init_uts_ns", "modules", "__per_cpu_offset", "current_task", "pcpu_hot", "vmcoreinfo_data",
    "vmcoreinfo_note", "startup_64", "primary_entry", "kimage_voffset", "memstart_addr", NULL,
};

static unsigned long ksym_total, ksym_vmlinux;

static int keep_kallsyms(const char *line)
{
    char name[512];
    unsigned long long addr;
    char type;
    char extra[512];
    int n = sscanf(line, "%llx %c %511s %511s", &addr, &type, name, extra);
    ksym_total++;
    if (n != 3)
        return 0; /* module symbols carry a 4th field */
    ksym_vmlinux++;
    if (strncmp(name, "kallsyms_", 9) == 0)
        return 1;
    for (int i = 0; wanted_syms[i]; i++)
        if (strcmp(name, wanted_syms[i]) == 0)
            return 1;
    return 0;
}

/* Prints "<pid> <cmdline-hex or -> <raw stat line>" for every process. */
static void processes(void)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    if (!d) {
        printf("error cannot-open /proc\n");
        return;
    }
    while ((e = readdir(d))) {
        char path[300], stat[2048], cmd[4096];
        ssize_t n;
        int fd;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        n = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (n <= 0)
            continue;
        stat[n] = 0;
        if (stat[n - 1] == '\n')
            stat[n - 1] = 0;
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        fd = open(path, O_RDONLY);
        n = fd < 0 ? 0 : read(fd, cmd, sizeof cmd);
        if (fd >= 0)
            close(fd);
        printf("%s ", e->d_name);
        if (n <= 0)
            putchar('-');
        for (ssize_t i = 0; i < n; i++)
            printf("%02x", (unsigned char)cmd[i]);
        printf(" %s\n", stat);
    }
    closedir(d);
}

int main(int argc, char **argv, char **envp)
{
    long ps = sysconf(_SC_PAGESIZE);
    unsigned pid = (unsigned)getpid();
    unsigned nonce = (unsigned)time(NULL) * 2654435761u ^ pid * 40503u;
    char *heap[HEAP_STRINGS];
    char *pages;
    struct utsname uts;
    volatile unsigned long spin = 0;

    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    pagemap_fd = open("/proc/self/pagemap", O_RDONLY);

    for (int i = 0; i < HEAP_STRINGS; i++) {
        heap[i] = malloc(256);
        if (!heap[i])
            return 1;
        snprintf(heap[i], 256, "MEMLENS-HEAP-%d-%u-%08x", i, pid, nonce);
    }
    pages = mmap(NULL, MMAP_PAGES * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pages == MAP_FAILED)
        return 1;
    for (int i = 0; i < MMAP_PAGES; i++)
        snprintf(pages + i * ps, 128, "MEMLENS-MMAP-PAGE-%d-%u-%08x", i, pid, nonce);
    mlockall(MCL_CURRENT);

    begin("marker");
    printf("pid %u\n", pid);
    printf("page_size %ld\n", ps);
    printf("mmap_base 0x%lx %d\n", (unsigned long)(uintptr_t)pages, MMAP_PAGES);
    for (int i = 0; i < HEAP_STRINGS; i++)
        item("heap", i, heap[i]);
    for (int i = 0; i < MMAP_PAGES; i++)
        item("mmap", i, pages + i * ps);
    for (int i = 0; i < argc; i++)
        item("argv", i, argv[i]);
    for (int i = 0; envp[i]; i++)
        if (strncmp(envp[i], "MEMLENS", 7) == 0)
            item("env", i, envp[i]);
    end("marker");

    begin("uname");
    if (uname(&uts) == 0)
        printf("%s\n%s\n%s\n", uts.release, uts.version, uts.machine);
    end("uname");
    begin("cmdline");
    cat_file("/proc/cmdline", NULL);
    end("cmdline");
    begin("ps");
    processes();
    end("ps");
    begin("modules");
    cat_file("/proc/modules", NULL);
    end("modules");
    begin("maps");
    cat_file("/proc/self/maps", NULL);
    end("maps");
    begin("kallsyms");
    cat_file("/proc/kallsyms", keep_kallsyms);
    printf("count %lu %lu\n", ksym_total, ksym_vmlinux);
    end("kallsyms");
    begin("iomem");
    cat_file("/proc/iomem", NULL);
    end("iomem");
    printf("===TESTLAB-READY===\n");
    fflush(stdout);

    for (;;) {
        spin++;
        if ((spin & 0xfffff) == 0) {
            heap[spin >> 20 & 1][0] = 'M'; /* keep the strings touched */
            sched_yield();
        }
    }
    return 0;
}
