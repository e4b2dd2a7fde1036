package ai.hfprune.engine.importance;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * The scoring pass's layer kernels ({@code layer_kernels.py}), compiled by libtorch's TorchScript loader and called by
 * name: one call runs a block's forward or backward pass with the fused kernels DJL 0.36's JNI does not expose (issue
 * 12: SiLU and its derivative, softmax's backward, products added into the residual stream, results written in place).
 *
 * <p>DJL loads TorchScript archives but cannot compile source, so the archive is written here, in the format
 * {@code torch.jit.save} writes: a zip of the module's code ({@code code/__torch__.py}, which the loader compiles), its
 * pickled object ({@code data.pkl}: a module of that class with no attributes but {@code training}), an empty
 * constants table and the format version. Calls run without autograd (the kernels differentiate by hand) and return
 * tensors attached to the caller's manager.
 */
final class LayerKernels {
    private static final String CLASS = "LayerKernels";
    private static final String SOURCE = "layer_kernels.py";
    private static volatile LayerKernels instance;

    private final PtSymbolBlock module;

    private LayerKernels(PtSymbolBlock module) {
        this.module = module;
    }

    /** The kernels, loaded once per JVM on first use (the module and its manager live as long as the JVM). */
    static LayerKernels get() {
        LayerKernels k = instance;
        if (k == null) {
            synchronized (LayerKernels.class) {
                k = instance;
                if (k == null) {
                    PtNDManager manager = (PtNDManager) NDManager.newBaseManager("PyTorch");
                    try {
                        k = new LayerKernels(JniUtils.loadModule(manager, new ByteArrayInputStream(archive()), false, false));
                    } catch (IOException e) {
                        manager.close();
                        throw new UncheckedIOException("cannot load the scoring kernels", e);
                    } catch (RuntimeException e) { // libtorch's TorchScript compiler rejected the source
                        manager.close();
                        throw new IllegalStateException("libtorch cannot compile the scoring kernels (" + SOURCE + "): "
                                + e.getMessage(), e);
                    }
                    instance = k;
                }
            }
        }
        return k;
    }

    /**
     * Runs method {@code name} with {@code args} (NDArray, NDArray[] as a list, Double, Integer or Long, Boolean).
     *
     * @return its tensor, or its list of tensors, in {@code target}
     */
    NDArray[] run(String name, NDManager target, Object... args) {
        List<IValue> inputs = new ArrayList<>(args.length);
        IValue result = null;
        try {
            for (Object arg : args) {
                inputs.add(value(arg));
            }
            result = IValueUtils.runMethod(module, name, inputs.toArray(new IValue[0]));
            PtNDManager manager = (PtNDManager) target;
            return result.isTensor() ? new NDArray[] {result.toTensor(manager)} : result.toTensorArray(manager);
        } finally {
            inputs.forEach(IValue::close);
            if (result != null) {
                result.close();
            }
        }
    }

    private static IValue value(Object arg) {
        if (arg instanceof NDArray a) {
            return IValue.from((PtNDArray) a);
        } else if (arg instanceof NDArray[] list) {
            PtNDArray[] tensors = new PtNDArray[list.length];
            for (int i = 0; i < list.length; i++) {
                tensors[i] = (PtNDArray) list[i];
            }
            return IValue.listFrom(tensors);
        } else if (arg instanceof Double d) {
            return IValue.from(d.doubleValue());
        } else if (arg instanceof Integer || arg instanceof Long) {
            return IValue.from(((Number) arg).longValue());
        } else if (arg instanceof Boolean b) {
            return IValue.from(b.booleanValue());
        }
        throw new IllegalArgumentException("no TorchScript value for " + arg);
    }

    /** The TorchScript archive of {@code layer_kernels.py}, as {@code torch.jit.save} lays one out. */
    static byte[] archive() throws IOException {
        byte[] code;
        try (InputStream in = LayerKernels.class.getResourceAsStream(SOURCE)) {
            if (in == null) {
                throw new IOException(SOURCE + " is missing from the classpath");
            }
            code = in.readAllBytes();
        }
        ByteArrayOutputStream zip = new ByteArrayOutputStream();
        try (ZipOutputStream out = new ZipOutputStream(zip)) {
            stored(out, "archive/code/__torch__.py", code);
            stored(out, "archive/data.pkl", modulePickle());
            stored(out, "archive/constants.pkl", new byte[] {(byte) 0x80, 2, ')', '.'}); // protocol 2, (), stop
            stored(out, "archive/version", "3\n".getBytes(StandardCharsets.US_ASCII));
        }
        return zip.toByteArray();
    }

    /** Pickle protocol 2 of {@code __torch__.LayerKernels} with state {training: False}: the module object. */
    private static byte[] modulePickle() {
        ByteArrayOutputStream p = new ByteArrayOutputStream();
        p.write(0x80); // PROTO 2
        p.write(2);
        p.writeBytes(("c__torch__\n" + CLASS + "\n").getBytes(StandardCharsets.US_ASCII)); // GLOBAL
        p.write(')'); // EMPTY_TUPLE
        p.write(0x81); // NEWOBJ
        p.write('}'); // EMPTY_DICT
        byte[] key = "training".getBytes(StandardCharsets.US_ASCII);
        p.write('X'); // BINUNICODE, 4-byte little-endian length
        p.writeBytes(new byte[] {(byte) key.length, 0, 0, 0});
        p.writeBytes(key);
        p.write(0x89); // NEWFALSE
        p.write('s'); // SETITEM
        p.write('b'); // BUILD
        p.write('.'); // STOP
        return p.toByteArray();
    }

    private static void stored(ZipOutputStream out, String name, byte[] data) throws IOException {
        ZipEntry entry = new ZipEntry(name);
        entry.setMethod(ZipEntry.STORED); // as torch.jit.save writes its records
        entry.setSize(data.length);
        CRC32 crc = new CRC32();
        crc.update(data);
        entry.setCrc(crc.getValue());
        out.putNextEntry(entry);
        out.write(data);
        out.closeEntry();
    }
}
