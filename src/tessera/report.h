// tessera's public header for report/: run directories read into a model of runs and written as
// one self-contained HTML page (tessera report). Includes every header of src/tessera/report/
// (installed under include/tessera/report/).
#pragma once

#include "tessera/report/html_page.h"
#include "tessera/report/read_run.h"
#include "tessera/report/report.h"
#include "tessera/report/run.h"
#include "tessera/report/svg_plot.h"
