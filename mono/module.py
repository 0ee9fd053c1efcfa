"""The LightningModule: it wires networks, geometry, losses and metrics; it computes nothing itself.

Frame ids select the training mode as in Monodepth2: ``["0", "-1", "1"]`` monocular,
``["0", "s"]`` stereo, ``["0", "-1", "1", "s"]`` mono+stereo.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytorch_lightning as pl
import torch
from torch import Tensor

from mono.data.augment import prepare_batch
from mono.data.calib import MONODEPTH2_BASELINE, metric_scale
from mono.frame_ids import STEREO, FrameId, parse_frame_ids
from mono.loss_terms import LossTerms, TermInputs, configured_terms, evaluate_terms
from mono.metrics import scored_depth_metrics
from mono.model_options import check_model_options
from mono.nets import (
    DepthDecoder,
    DepthNetName,
    LearnedIntrinsics,
    PoseKind,
    PoseNet,
    depth_net_from_options,
)
from mono.objective import ObjectiveConfig
from mono.rng_state import rng_states, set_rng_states
from mono.types import Batch, DepthOutput, Views

TrainingMode = Literal["self_supervised", "supervised", "hybrid"]


class DepthModel(pl.LightningModule):
    """Joint training of a depth network and a pose network (Monodepth2) or supervised depth.

    Args:
        height: network input height in pixels, a multiple of 32 for "resnet" (set through
            ``data.height``). Default 192.
        width: network input width in pixels, a multiple of 32 for "resnet" (set through
            ``data.width``). Default 640.
        frame_ids: target "0" first, then source offsets and/or "s" (set through
            ``data.frame_ids``). Default ["0", "-1", "1"].
        stereo_baseline: baseline of the "s" frame, metres or "calib" (set through
            ``data.stereo_baseline``). With ``frame_ids`` and ``training_mode`` it fixes the
            metric scale of the depth (:attr:`metric_scale`, stored with the checkpoint): 0.1 is
            Monodepth2's convention (metres = 5.4 x depth); "calib" or any other number is
            taken as the real baseline (metres). Default 0.1.
        depth_net: "resnet" (Monodepth2 U-Net) or "eigen" (Eigen et al. 2014 coarse-to-fine).
            Default "resnet".
        num_layers: ResNet depth 18/34/50/101/152 for the depth and pose encoders. Default 18.
        pretrained: start the encoders from torchvision's ImageNet weights (needs them cached or
            the internet). Default True.
        pose_model_type: "separate" (own ResNet), "shared" (depth encoder features) or
            "posecnn". Default "separate".
        scales: decoder scales used in the loss (0 = full resolution, s = 1/2**s). Default
            [0, 1, 2, 3].
        min_depth: depth at sigmoid disparity 1, in metres (metric with a stereo baseline in
            metres, else up to scale). Default 0.1.
        max_depth: depth at sigmoid disparity 0, in metres (as min_depth). Default 100.
        ssim_weight: weight of SSIM against L1 in the photometric error, in [0, 1] (Monodepth2:
            0.85 SSIM + 0.15 L1). Default 0.85.
        disparity_smoothness: weight of the edge-aware smoothness of mean-normalised disparity
            at scale 0; scale s uses it / 2**s. Default 0.001.
        no_ssim: photometric error is plain L1 (no SSIM term). Default False.
        avg_reprojection: average the reprojection error over source frames instead of taking
            the per-pixel minimum. Default False.
        disable_automasking: keep pixels that an unwarped source explains better (no
            auto-mask). Default False.
        v1_multiscale: Monodepth v1 multi-scale: compare each scale at its own resolution
            instead of upsampling its disparity to the input size. Default False.
        predictive_mask: weight the reprojection by a predicted explainability mask (Zhou et
            al. 2017) instead of auto-masking; "resnet" only. Default False.
        training_mode: "self_supervised" (view synthesis), "supervised" (ground truth only) or
            "hybrid" (both, summed). Default "self_supervised".
        self_supervised_terms: name -> weight of the self-supervised terms (names in
            ``mono.loss_terms.SELF_SUPERVISED_TERMS``). Default None = Monodepth2's
            ``{"reprojection": 1, "smoothness": disparity_smoothness}``.
        supervised_losses: name -> weight of the supervised terms (names in
            ``mono.losses.SUPERVISED_LOSSES``). Default None = ``{"silog": 1.0}``.
        supervised_weight: factor on the supervised sum in hybrid mode. Default 1.0.
        gt_depth_range: ground truth, in metres, counts for the supervised terms only inside
            this open range; it is the sensor's range, not the network's (``min_depth`` ..
            ``max_depth``). Default (0.1, 100).
        lr: Adam learning rate of all networks. Default 0.0001.
        scheduler_step_size: StepLR period in epochs: the learning rate is multiplied by
            scheduler_gamma every this many epochs. Default 15.
        scheduler_gamma: StepLR factor applied every scheduler_step_size epochs. Default 0.1.
        eval_crop: "garg" (KITTI Eigen crop) or "none" for validation/test metrics. Default
            "garg".
        eval_scaling: "median" (per-image median scaling, mono models), "stereo" (the model's
            fixed :attr:`metric_scale`: x5.4 for the 0.1 m baseline convention, x1 for a metric
            baseline or supervised training) or "none". Default "median".
        eval_max_depth: ground truth beyond this depth, in metres, is ignored in metrics (KITTI:
            80). Default 80.
        init_weights: a Monodepth2 weights folder (encoder.pth, depth.pth, optionally
            pose_encoder.pth, pose.pth) to start from (fine-tuning), or to validate/test. A
            ``--ckpt_path`` checkpoint wins. Default None.
        max_skipped_nonfinite: training steps with a NaN/inf loss or gradient to skip before
            the run stops with a diagnosis (see :class:`mono.stopping.NonFiniteGuard`).
            Default 0: stop at the first.
        translation_by_mean_inv_depth: multiply each predicted translation by the mean inverse
            depth it warps with (Wang et al. 2018's depth normalisation, which Monodepth2 applies
            to "posecnn" only): the depth network then no longer chooses the scene's scale.
            Default None: Monodepth2's rule (on for "posecnn" only).
        automask_warmup_steps: optimiser steps trained without auto-masking before it turns
            on. From scratch, the auto-mask at first keeps only the pixels a still-random warp
            already explains and training settles in a degenerate state (an image-independent
            depth layout, spurious rotation); every pixel taking part at first avoids it
            (docs/convergence.md). After the warm-up the loss is Monodepth2's. Default 0 (off).
        automask_ramp_steps: after the warm-up, the auto-masked loss takes over from the
            unmasked one linearly over this many steps instead of at once (a blend of the
            two losses, the masked one's weight rising from 0 to 1). Default 0 (at once).
        pose_lr_scale: the pose network's learning rate as a multiple of ``lr``. Default 1.
        lr_warmup_steps: the first N optimiser steps run at ``(step + 1) / N`` times every
            learning rate. Adam's first steps move every weight by about the full rate in the
            gradient's sign; from scratch they can drive the disparity's sigmoid into
            saturation (depth at max_depth everywhere) within 20 steps, where it stays
            (docs/convergence.md). Default 0 (off).
        masked_pose_lr_scale: once auto-masking is on (from step ``automask_warmup_steps``),
            the pose network's learning rate is multiplied by this. From scratch, the pose
            network can answer the mask's switch with a spurious rotation that the masked
            pixels reward; a slower pose keeps the geometry the warm-up found
            (docs/convergence.md). Default 1 (unchanged).
        channels_last: keep the networks' weights and activations in channels-last memory
            order (NHWC), which tensor-core GPUs convolve faster; same results. Default False.
        compile: ``torch.compile`` the depth and pose networks when training, validating or
            testing starts (minutes of compilation per input shape, then faster steps on a
            GPU; the checkpoint's keys do not change). Default False.
        learn_intrinsics: warp with a camera learned through the view-synthesis loss (Gordon
            et al. 2019) instead of the batch's K, for videos without intrinsics: one camera
            (normalised fx, fy, cx, cy, :class:`mono.nets.LearnedIntrinsics`) shared by every
            sequence, so train on videos from one camera. It is logged every step
            (``train/fx_norm`` ...), saved in the checkpoint and used by ``mono predict
            --point-cloud``. Not for ``training_mode='supervised'`` (nothing warps). Default
            False.
        initial_hfov_deg: horizontal field of view, in degrees, the learned camera starts from
            (square pixels, principal point at the centre). Default 60.
        intrinsics_square_pixels: the learned camera has one focal length in pixels for both
            axes (fy follows fx), else two. Default True.
        intrinsics_lr_scale: the learned camera's learning rate as a multiple of ``lr``: its
            four numbers need far fewer steps than the networks' weights to move from a guessed
            field of view to the true one. Default 10.
    """

    def __init__(
        self,
        height: int = 192,
        width: int = 640,
        frame_ids: list[FrameId] = ("0", "-1", "1"),  # type: ignore[assignment]
        stereo_baseline: float | Literal["calib"] = MONODEPTH2_BASELINE,
        depth_net: DepthNetName = "resnet",
        num_layers: int = 18,
        pretrained: bool = True,
        pose_model_type: PoseKind = "separate",
        scales: list[int] = (0, 1, 2, 3),  # type: ignore[assignment]
        min_depth: float = 0.1,
        max_depth: float = 100.0,
        ssim_weight: float = 0.85,
        disparity_smoothness: float = 1e-3,
        no_ssim: bool = False,
        avg_reprojection: bool = False,
        disable_automasking: bool = False,
        v1_multiscale: bool = False,
        predictive_mask: bool = False,
        training_mode: TrainingMode = "self_supervised",
        self_supervised_terms: dict[str, float] | None = None,
        supervised_losses: dict[str, float] | None = None,
        supervised_weight: float = 1.0,
        gt_depth_range: tuple[float, float] = (0.1, 100.0),
        lr: float = 1e-4,
        scheduler_step_size: int = 15,
        scheduler_gamma: float = 0.1,
        eval_crop: Literal["garg", "none"] = "garg",
        eval_scaling: Literal["median", "stereo", "none"] = "median",
        eval_max_depth: float = 80.0,
        init_weights: str | None = None,
        max_skipped_nonfinite: int = 0,
        translation_by_mean_inv_depth: bool | None = None,
        automask_warmup_steps: int = 0,
        automask_ramp_steps: int = 0,
        pose_lr_scale: float = 1.0,
        masked_pose_lr_scale: float = 1.0,
        lr_warmup_steps: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        learn_intrinsics: bool = False,
        initial_hfov_deg: float = 60.0,
        intrinsics_square_pixels: bool = True,
        intrinsics_lr_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_model_options(self.hparams)
        self.last_loss_terms: dict[str, Tensor] = {}  # read by the non-finite guard
        self.frames = parse_frame_ids(frame_ids, name="model.frame_ids")
        self.frame_ids = list(self.frames)
        self.source_ids = self.frame_ids[1:]
        self.temporal_ids = list(self.frames.temporal)
        self.supervised_losses = dict(
            {"silog": 1.0} if supervised_losses is None else supervised_losses
        )
        if training_mode != "self_supervised" and not self.supervised_losses:
            raise ValueError(
                f"model.supervised_losses is empty: training_mode='{training_mode}' needs a term"
            )
        if self_supervised_terms is None:
            self_supervised_terms = {"reprojection": 1.0, "smoothness": disparity_smoothness}
        self.terms = configured_terms(
            training_mode, self_supervised_terms, self.supervised_losses, supervised_weight
        )
        self.self_supervised = training_mode != "supervised"
        try:
            scale = metric_scale(self.frame_ids, stereo_baseline, training_mode)
        except ValueError as err:
            raise ValueError(f"model.{err} (linked to data.stereo_baseline)") from None
        if eval_scaling == "stereo" and scale is None:
            raise ValueError(
                f"model.eval_scaling='stereo' needs a metric model, but frame_ids "
                f"{self.frame_ids} have no stereo frame 's': use 'median'"
            )
        if self.self_supervised and not self.source_ids:
            raise ValueError("model.frame_ids needs at least one source frame for self-supervision")
        # The depth network owns what its disparity means: the range and metric scale.
        self.depth = depth_net_from_options(
            depth_net,
            num_layers,
            scales,
            height,
            width,
            pretrained=pretrained,
            min_depth=min_depth,
            max_depth=max_depth,
            metric_scale=scale,
        )
        self.objective = ObjectiveConfig(
            min_depth=self.depth.min_depth,
            max_depth=self.depth.max_depth,
            ssim_weight=ssim_weight,
            disparity_smoothness=disparity_smoothness,
            no_ssim=no_ssim,
            avg_reprojection=avg_reprojection,
            disable_automasking=disable_automasking,
            v1_multiscale=v1_multiscale,
            predictive_mask=predictive_mask,
            scale_translation_by_mean_inv_depth=(
                pose_model_type == "posecnn"
                if translation_by_mean_inv_depth is None
                else translation_by_mean_inv_depth
            ),
        )
        needs_pose = self.self_supervised and bool(self.temporal_ids)
        self.pose = (
            PoseNet(kind=pose_model_type, num_layers=num_layers, pretrained=pretrained)
            if needs_pose
            else None
        )
        self.mask_decoder = (
            DepthDecoder(
                self.depth.encoder.num_ch_enc,
                scales=tuple(scales),
                num_output_channels=len(self.source_ids),
            )
            if predictive_mask and self.self_supervised
            else None
        )
        self.intrinsics = (
            LearnedIntrinsics(height, width, initial_hfov_deg, intrinsics_square_pixels)
            if learn_intrinsics
            else None
        )
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        data_options = getattr(datamodule, "hparams", {})
        if data_options.get("intrinsics") == "learned" and not self.hparams.learn_intrinsics:
            raise ValueError(
                "data.intrinsics='learned' needs model.learn_intrinsics true: the batches' K "
                "is a placeholder, and warping with it would train a wrong geometry"
            )
        # Lightning restores a --ckpt_path checkpoint after setup(), so it wins over this; for
        # validate/test without one, these are the weights that get scored.
        if self.hparams.init_weights and not getattr(self, "_initialised", False):
            from mono.checkpoint import init_model_from_monodepth2

            init_model_from_monodepth2(self, self.hparams.init_weights)
            self._initialised = True
        if self.hparams.compile and not getattr(self, "_compiled", False):
            # nn.Module.compile compiles in place: parameter names, and so checkpoints, stay.
            for net in (self.depth, self.pose, self.mask_decoder):
                if net is not None:
                    net.compile()
            self._compiled = True

    # ----------------------------------------------------------------------------- wiring
    def on_after_batch_transfer(self, batch, dataloader_idx: int = 0):
        if isinstance(batch, Batch):
            return prepare_batch(batch, self.hparams.height, self.hparams.width)
        return batch

    def forward(self, image: Tensor) -> DepthOutput:
        """Disparities for a (B, 3, H, W) image batch in [0, 1]."""
        return self.depth(image)

    @property
    def metric_scale(self) -> float | None:
        """Metres per unit of predicted depth, or None (up to scale): the depth network's."""
        return self.depth.metric_scale

    def predict_depth(self, image: Tensor) -> Tensor:
        """(B, 1, H, W) depth at full input resolution (up to scale for mono models)."""
        return self.depth.predict_depth(image)

    def _encode(self, views: Views):
        """Depth output for the target and, for the 'shared' pose net, features of all frames."""
        if self.pose is not None and self.hparams.pose_model_type == "shared":
            b, f = views.color_aug.shape[:2]
            feats = self.depth.encoder(views.color_aug.flatten(0, 1))
            per_frame = [x.unflatten(0, (b, f)) for x in feats]
            disps = self.depth.decoder([x[:, 0] for x in per_frame])
            return DepthOutput(disps=disps), per_frame, [x[:, 0] for x in per_frame]
        if self.mask_decoder is not None:
            feats = self.depth.encoder(views.color_aug[:, 0])
            return DepthOutput(disps=self.depth.decoder(feats)), None, feats
        return self.depth(views.color_aug[:, 0]), None, None

    def predict_poses(self, views: Views, per_frame_feats=None) -> Tensor:
        """(B, S, 4, 4) T_src_tgt for every source frame (:meth:`PoseNet.transforms` orders,
        inverts and routes); the stereo partner's is the batch's known ``T_stereo``.

        With the 'shared' pose network, ``per_frame_feats`` are the depth encoder's features of
        every frame (each (B, F, C, h, w)); only the deepest level is used.
        """
        T = {}
        if self.temporal_ids:
            index = [self.frame_ids.index(f) for f in self.temporal_ids]
            deepest = None if per_frame_feats is None else per_frame_feats[-1]
            poses = self.pose.transforms(
                views.color_aug[:, 0],
                [views.color_aug[:, i] for i in index],
                list(self.frames.offsets),
                target_features=None if deepest is None else deepest[:, 0],
                source_features=None if deepest is None else [deepest[:, i] for i in index],
            )
            T.update(zip(self.temporal_ids, poses.unbind(1), strict=True))
        if self.frames.stereo:
            T[STEREO] = views.T_stereo
        return torch.stack([T[f] for f in self.source_ids], dim=1)

    def warping_K(self, views: Views) -> Tensor:
        """(B, 3, 3) pixel K the objective warps with: the learned camera's, else the batch's."""
        if self.intrinsics is None:
            return views.K
        b, _, _, h, w = views.color.shape
        return self.intrinsics(b, h, w, flip=views.flip, sizes=views.sizes)

    def compute_loss(self, views: Views, keep: bool = False, automask: float = 1.0) -> LossTerms:
        """Every configured term on a prepared batch (:mod:`mono.loss_terms`); ``keep`` also
        records the view synthesis's intermediates. ``automask`` weighs the auto-masked loss
        against the unmasked one: 0 (or False) turns auto-masking off for this batch, as in
        the warm-up of training."""
        depth_out, per_frame_feats, target_feats = self._encode(views)
        inputs = TermInputs(
            views=views,
            disps=depth_out.disps,
            depth_net=self.depth,
            source_ids=self.source_ids,
            objective=self.objective,
            gt_depth_range=tuple(self.hparams.gt_depth_range),
            keep=keep,
        )
        if self.self_supervised:
            inputs.T_src_tgt = self.predict_poses(views, per_frame_feats)
            inputs.K = self.warping_K(views)
            if self.mask_decoder is not None:
                inputs.masks = self.mask_decoder(target_feats)
            if not automask and not self.objective.disable_automasking:
                inputs.objective = dataclasses.replace(self.objective, disable_automasking=True)
            elif automask < 1:
                inputs.objective = dataclasses.replace(
                    self.objective, automask_weight=float(automask)
                )
        return evaluate_terms(self.terms, inputs)

    # ----------------------------------------------------------------------------- steps
    def automask_weight(self, step: int) -> float:
        """Weight of the auto-masked loss at optimiser step ``step``: 0 in the warm-up, then
        rising linearly to 1 over the ramp."""
        after = step - self.hparams.automask_warmup_steps
        if after < 0:
            return 0.0
        ramp = self.hparams.automask_ramp_steps
        return 1.0 if after >= ramp else (after + 1) / (ramp + 1)

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # The optimiser's state (its learning rates included) is saved with checkpoints, so
        # this happens once, also across a resume.
        hp = self.hparams
        if hp.automask_warmup_steps and self.global_step == hp.automask_warmup_steps:
            for group in self.optimizers().optimizer.param_groups:
                if group.get("name") == "pose":
                    group["lr"] *= hp.masked_pose_lr_scale

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        # The warm-up scales the rates for this step only, so the schedulers and the
        # checkpointed optimiser state keep the configured ones.
        warmup = self.hparams.lr_warmup_steps
        if self.global_step >= warmup:
            optimizer.step(closure=optimizer_closure)
            return
        rates = [group["lr"] for group in optimizer.param_groups]
        for group, rate in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = rate * (self.global_step + 1) / warmup
        try:
            optimizer.step(closure=optimizer_closure)
        finally:
            for group, rate in zip(optimizer.param_groups, rates, strict=True):
                group["lr"] = rate

    def training_step(self, views: Views, batch_idx: int) -> Tensor:
        terms = self.compute_loss(views, automask=self.automask_weight(self.global_step))
        logged = {"loss": terms.loss.detach(), **{k: v.detach() for k, v in terms.values.items()}}
        self.last_loss_terms = logged
        bs = views.color.shape[0]
        self.log_dict({f"train/{k}": v for k, v in logged.items()}, batch_size=bs)
        self.log("loss", logged["loss"], prog_bar=True, logger=False, batch_size=bs)
        if self.intrinsics is not None:
            camera = {f"train/{k}": v for k, v in self.intrinsics.describe().items()}
            self.log_dict(camera, batch_size=bs)
        return terms.loss

    def _depth_metrics(self, views: Views, stage: str) -> None:
        if views.depth_gt is None:
            return
        depth = self.predict_depth(views.color[:, 0])
        if self.hparams.eval_scaling == "stereo":
            depth = depth * self.metric_scale
        scores = scored_depth_metrics(
            depth,
            views.depth_gt,
            views.sizes,
            crop=self.hparams.eval_crop,
            median_scaling=self.hparams.eval_scaling == "median",
            max_depth=self.hparams.eval_max_depth,
        )
        for name, values in scores.items():
            if values.numel():
                self.log(
                    f"{stage}/{name}",
                    values.mean(),
                    batch_size=values.numel(),
                    prog_bar=name == "abs_rel",
                    sync_dist=True,
                )

    def validation_step(self, views: Views, batch_idx: int) -> None:
        self._depth_metrics(views, "val")

    def test_step(self, views: Views, batch_idx: int) -> None:
        self._depth_metrics(views, "test")

    def configure_optimizers(self):
        # The fused kernel does the same update in one pass (2x faster than the default on
        # CPU, measured with `mono benchmark`); devices without one take the default.
        camera = [] if self.intrinsics is None else list(self.intrinsics.parameters())
        # The pose group exists only when its rate differs, so that checkpoints keep the
        # optimiser layout they had.
        hp = self.hparams
        own_pose_lr = hp.pose_lr_scale != 1 or hp.masked_pose_lr_scale != 1
        pose = list(self.pose.parameters()) if self.pose is not None and own_pose_lr else []
        own_lr = {id(p) for p in camera + pose}
        groups = [{"params": [p for p in self.parameters() if id(p) not in own_lr]}]
        if pose:
            lr = hp.lr * hp.pose_lr_scale
            if hp.automask_warmup_steps == 0:
                lr *= hp.masked_pose_lr_scale
            groups.append({"params": pose, "lr": lr, "name": "pose"})
        if camera:
            lr = self.hparams.lr * self.hparams.intrinsics_lr_scale
            groups.append({"params": camera, "lr": lr})
        try:
            optimizer = torch.optim.Adam(groups, lr=self.hparams.lr, fused=True)
        except (RuntimeError, ValueError):
            optimizer = torch.optim.Adam(groups, lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(
            optimizer,
            step_size=self.hparams.scheduler_step_size,
            gamma=self.hparams.scheduler_gamma,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    # ----------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The global RNG draws the auto-mask tie-break noise. The data loaders use private
        # generators, so nothing else draws from it between steps, and restoring it on resume
        # makes the continued run repeat the uninterrupted one bit for bit.
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        resuming_fit = self._trainer is not None and self._trainer.state.fn == "fit"
        if resuming_fit and "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
