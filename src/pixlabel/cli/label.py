"""``pixlabel label IMAGES [--labels SEED.csv] --out WS``: label every image from a few human labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from pixlabel.config import load_config
from pixlabel.pipeline.config import LabelConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "label", help="label every image from a handful of human labels",
        description="Label every image in IMAGES from seed labels (SEED.csv with path,label, or an ImageFolder "
                    "layout: CLASS/img.png are seeds, top-level files and unlabeled/ are not). Writes the "
                    "workspace: pixlabel.db, labels.csv, errors.csv, report.html, config.yaml. Re-running on "
                    "the same workspace reuses cached embeddings and every human correction.")
    p.add_argument("images", help="folder of images (searched recursively)")
    p.add_argument("--labels", help="SEED.csv with columns path,label (paths relative to IMAGES)")
    p.add_argument("--out", required=True, help="workspace directory")
    p.add_argument("--config", type=Path, help="YAML file with any of the options below (flags win)")
    p.add_argument("--db", help="database URL (default: WS/pixlabel.db); e.g. postgresql://user:pw@host/db")
    p.add_argument("--backbone", help="timm model name, or torchvision/NAME (default tf_efficientnet_lite0)")
    p.add_argument("--weights", help="local weights file for the backbone (offline use)")
    p.add_argument("--image-size", type=int, help="backbone input size in pixels (default: from the images, 96-224)")
    p.add_argument("--method", help="auto (cross-validated choice), poisson, laplace, probe, labelspreading, "
                                    "selftrain, sgan (semi-supervised GAN; slow: not tried by auto)")
    p.add_argument("--target-precision", type=float, help="precision auto-accepted labels must reach (0.97)")
    p.add_argument("--seed", type=int, help="random seed (runs are deterministic given it)")
    p.add_argument("--engine", choices=["local", "ray"], help="executor for embedding: local (default) or ray")
    p.add_argument("--ray-address", help="Ray cluster address (with --engine ray; default: start a local Ray)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], help="backbone arithmetic")
    p.add_argument("--max-pixels", type=int, help="refuse images with more pixels (decompression bombs)")
    p.add_argument("--classes", help="comma-separated class list (with --zero-shot, classes may lack seeds)")
    p.add_argument("--zero-shot", action="store_true", default=None,
                   help="add open_clip zero-shot labels from class names as a candidate labeler")
    p.add_argument("--clip-arch", help="open_clip architecture (default ViT-B-32)")
    p.add_argument("--clip-pretrained", help="open_clip weights: a tag (downloads when online) or a local file")
    p.add_argument("--prompts", help="YAML file {class: [prompt, ...]} for --zero-shot")
    d = p.add_argument_group("boxes and masks (--task detect|segment)")
    d.add_argument("--task", choices=["classify", "detect", "segment", "ocr"],
                   help="classify (default): one class per image; detect: boxes; segment: boxes + instance masks; "
                        "ocr: text-line boxes with their transcript (RapidOCR, no seeds). "
                        "For detect/segment --labels is COCO .json, a YOLO or VOC folder, or a CSV with boxes")
    d.add_argument("--detector", choices=["fcos", "retinanet", "fasterrcnn"], help="detector (default fcos)")
    d.add_argument("--time-budget", type=float, metavar="MIN",
                   help="minutes for the whole run; training steps are planned to fit (default: from --effort "
                        "and the image count: balanced is 5.5 min + 4 min per 1,000 images)")
    d.add_argument("--effort", choices=["fast", "balanced", "thorough"],
                   help="how hard to try without --time-budget: fast (half the minutes, no student round), "
                        "balanced (default, 1 student round), thorough (2.5x the minutes, 2 rounds)")
    d.add_argument("--detector-size", type=int,
                   help="shorter image side the detector sees (default: the images' median shorter side, at "
                        "most 512; small images are not upsampled)")
    d.add_argument("--teacher-steps", type=int, help="training steps on the seed boxes (default: from the budget)")
    d.add_argument("--student-steps", type=int, help="training steps per student round (default: from the budget)")
    d.add_argument("--rounds", type=int, help="student rounds at most (default by effort: 0, 1, 2; stops when "
                                             "held-out mAP drops)")
    d.add_argument("--pseudo-threshold", type=float, help="calibrated confidence a pseudo-box needs (0.5)")
    d.add_argument("--no-flip-tta", dest="flip_tta", action="store_false", default=None,
                   help="final boxes from the image only, not also its mirror (for classes a flip changes, "
                        "e.g. left/right arrows)")
    d.add_argument("--tta-scales", metavar="S,S", help="final boxes merged over these input scales, e.g. 1,1.25 "
                                                       "(default 1,1.25; each scale is one more pass)")
    d.add_argument("--open-vocab", metavar="MODEL",
                   help="OWLv2 checkpoint (hub id when online, or a local dir): boxes from class names (and "
                        "--prompts) join the teacher's training as calibrated pseudo-boxes")
    d.add_argument("--segmenter", metavar="sam:MODEL",
                   help="with --task segment: masks from SAM prompted with each box, instead of a Mask R-CNN head")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> LabelConfig:
    overrides = {
        "images": args.images, "out": args.out, "labels": args.labels, "db": args.db,
        "backbone": args.backbone, "weights": args.weights, "image_size": args.image_size,
        "method": args.method, "target_precision": args.target_precision, "seed": args.seed,
        "engine": args.engine, "ray_address": args.ray_address, "batch_size": args.batch_size,
        "precision": args.precision,
        "max_pixels": args.max_pixels, "classes": args.classes, "zero_shot": args.zero_shot,
        "clip_arch": args.clip_arch, "clip_pretrained": args.clip_pretrained, "prompts": args.prompts,
        "task": args.task, "detector": args.detector, "detector_size": args.detector_size,
        "teacher_steps": args.teacher_steps, "student_steps": args.student_steps, "rounds": args.rounds,
        "pseudo_threshold": args.pseudo_threshold, "open_vocab": args.open_vocab, "flip_tta": args.flip_tta,
        "tta_scales": args.tta_scales, "effort": args.effort, "time_budget": args.time_budget,
        "segmenter": args.segmenter,
    }
    return load_config(LabelConfig, args.config, overrides)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    if config.task == "ocr":  # text boxes with transcripts (RapidOCR); no seeds
        from pixlabel.pipeline.ocr_label import print_ocr_summary, run_ocr_label

        print_ocr_summary(run_ocr_label(config))
        return 0
    if config.task != "classify":
        from pixlabel.pipeline.detect_label import run_detect_label
        from pixlabel.pipeline.summary import print_detect_summary

        print_detect_summary(run_detect_label(config))
        return 0
    from pixlabel.pipeline.label import run_label
    from pixlabel.pipeline.summary import print_summary

    print_summary(run_label(config))
    return 0
