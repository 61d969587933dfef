/* A configuration file, through inih, our line reader and validation. */
#include "fuzz.h"
#include "serai.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct config c;

	config_defaults(&c);
	config_load_buf(&c, "fuzz.ini", (const char *)data, len);
	config_free(&c);
	return 0;
}
