#include "core/err.h"

const char *err_str(int code)
{
	if (code < 0)
		code = -code;
	switch (code) {
	case 0:
		return "ok";
#define ERR_CASE(name, value, msg)                                                                 \
	case value:                                                                                \
		return msg;
		ERR_LIST(ERR_CASE)
#undef ERR_CASE
	}
	return "unknown error";
}
