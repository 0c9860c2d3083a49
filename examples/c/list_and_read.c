/*
 * memlens C API example: list the plugin inventory, open a connector plugin and read
 * physical memory through it.
 *
 *   cc -I include examples/c/list_and_read.c -L <dir of libmemlens_plugin.so> \
 *      -lmemlens_plugin -o list_and_read
 *   MEMLENS_PLUGIN_PATH=/path/to/plugins ./list_and_read 'testconn' 0x1000
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "memlens.h"

int main(int argc, char **argv) {
    const char *spec = argc > 1 ? argv[1] : "testconn";
    uint64_t addr = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x1000;
    char err[512] = {0};

    MlInventory *inv = memlens_inventory_scan();
    if (inv == NULL) {
        fprintf(stderr, "inventory scan failed\n");
        return 2;
    }
    size_t n = memlens_inventory_len(inv);
    for (size_t i = 0; i < n; i++) {
        MlPluginInfo p;
        if (memlens_inventory_get(inv, i, &p) == MEMLENS_OK) {
            printf("plugin %s %s %s %s [%s]\n", p.kind, p.name, p.version, p.path, p.status);
        }
    }

    MlConnector *c = memlens_connector_open(inv, spec, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "cannot open '%s': %s\n", spec, err);
        memlens_inventory_free(inv);
        return 1;
    }
    printf("max_addr 0x%" PRIx64 "\n", memlens_connector_max_addr(c));

    uint8_t buf[16];
    int rc = memlens_phys_read(c, addr, buf, sizeof buf, err, sizeof err);
    if (rc != MEMLENS_OK) {
        fprintf(stderr, "read at 0x%" PRIx64 " failed (%d): %s\n", addr, rc, err);
        memlens_connector_free(c);
        memlens_inventory_free(inv);
        return 1;
    }
    printf("read 0x%" PRIx64 ":", addr);
    for (size_t i = 0; i < sizeof buf; i++) {
        printf(" %02x", buf[i]);
    }
    printf("\n");

    rc = memlens_phys_read(c, UINT64_C(1) << 40, buf, sizeof buf, err, sizeof err);
    printf("past the end: rc=%d: %s\n", rc, err);

    memlens_connector_free(c);
    memlens_inventory_free(inv);
    return 0;
}
