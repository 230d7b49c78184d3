# WGCNA blockwiseModules on a patients x genes table, for radmap's head-to-head benchmark.
#
# Usage:
#   Rscript benchmarks/wgcna_blockwise.R INPUT.tsv LABELS.tsv POWER MIN_MODULE_SIZE \
#       MERGE_CUT_HEIGHT DEEP_SPLIT N_THREADS [MODE]
#
# INPUT.tsv: tab-separated, first column patient IDs, one column per gene (header = genes).
# MODE "blockwise" (default): one blockwiseModules call, one block (maxBlockSize above the
#   gene count), signed network and signed TOM; LABELS.tsv gets columns gene, label (numeric
#   labels, 0 = grey / unassigned); prints "blockwiseModules_seconds <elapsed>", the time
#   spent inside blockwiseModules alone (reading the table and loading WGCNA are outside it).
# MODE "stepwise": the tutorial's step-by-step route with the same parameters instead
#   (TOMsimilarityFromExpr, hclust, cutreeDynamic, mergeCloseModules: no kME check or gene
#   reassignment); LABELS.tsv as above; prints "stepwise_seconds <elapsed>".

args <- commandArgs(trailingOnly = TRUE)
if (!(length(args) %in% c(7, 8))) {
  stop("usage: wgcna_blockwise.R INPUT.tsv LABELS.tsv POWER MIN_MODULE_SIZE ",
       "MERGE_CUT_HEIGHT DEEP_SPLIT N_THREADS [blockwise|stepwise]")
}
input <- args[1]
output <- args[2]
power <- as.numeric(args[3])
min_module_size <- as.integer(args[4])
merge_cut_height <- as.numeric(args[5])
deep_split <- as.integer(args[6])
n_threads <- as.integer(args[7])
mode <- if (length(args) == 8) args[8] else "blockwise"
if (!(mode %in% c("blockwise", "stepwise"))) stop("MODE must be blockwise or stepwise")

suppressPackageStartupMessages(library(WGCNA))
options(stringsAsFactors = FALSE)
enableWGCNAThreads(nThreads = n_threads)

expression <- as.matrix(read.delim(input, row.names = 1, check.names = FALSE))
cat(sprintf("input %d patients x %d genes\n", nrow(expression), ncol(expression)))

run_blockwise <- function() {
  seconds <- system.time(
    net <- blockwiseModules(
      expression,
      power = power,
      networkType = "signed",
      TOMType = "signed",
      corType = "pearson",
      maxBlockSize = ncol(expression) + 1,
      minModuleSize = min_module_size,
      deepSplit = deep_split,
      mergeCutHeight = merge_cut_height,
      pamStage = TRUE,
      pamRespectsDendro = TRUE,
      detectCutHeight = 0.995,
      minCoreKME = 0.5,
      minKMEtoStay = 0.3,
      reassignThreshold = 1e-6,
      numericLabels = TRUE,
      saveTOMs = FALSE,
      verbose = 0
    )
  )[["elapsed"]]
  list(seconds = seconds, labels = as.integer(net$colors))
}

run_stepwise <- function() {
  seconds <- system.time({
    tom <- TOMsimilarityFromExpr(
      expression, power = power, networkType = "signed", TOMType = "signed", verbose = 0
    )
    dissimilarity <- 1 - tom
    rm(tom)
    tree <- fastcluster::hclust(as.dist(dissimilarity), method = "average")
    labels <- cutreeDynamic(
      tree, distM = dissimilarity, deepSplit = deep_split, minClusterSize = min_module_size,
      cutHeight = 0.995, pamRespectsDendro = TRUE, verbose = 0
    )
    merged <- mergeCloseModules(expression, labels, cutHeight = merge_cut_height, verbose = 0)
  })[["elapsed"]]
  list(seconds = seconds, labels = as.integer(merged$colors))
}

result <- if (mode == "blockwise") run_blockwise() else run_stepwise()
labels <- data.frame(gene = colnames(expression), label = result$labels)
write.table(labels, output, sep = "\t", quote = FALSE, row.names = FALSE)
cat(sprintf("%s_seconds %.4f\n", if (mode == "blockwise") "blockwiseModules" else "stepwise",
            result$seconds))
cat(sprintf("modules %d\n", length(setdiff(unique(labels$label), 0))))
