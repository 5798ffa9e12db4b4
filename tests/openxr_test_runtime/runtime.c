/*
 * A minimal headless OpenXR runtime for surgplan's tests (instance level only, for now).
 *
 * Found by the standard Khronos loader through XR_RUNTIME_JSON (manifest written by the tests).
 * Implements: loader negotiation (runtime interface 1), xrGetInstanceProcAddr,
 * xrEnumerateInstanceExtensionProperties (XR_KHR_opengl_enable), xrCreateInstance,
 * xrDestroyInstance, xrGetInstanceProperties, xrGetSystem (head-mounted display, id 1; none
 * when SURGPLAN_XR_TEST_NO_HMD=1), xrResultToString, xrStructureTypeToString. Every other
 * function is reported unsupported. No session, swapchains, frame loop or actions yet.
 *
 * The OpenXR headers are not installed on these machines: the few ABI types used are declared
 * here as the OpenXR 1.0 specification (and loader_interfaces.h) define them for 64-bit Linux.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t XrResult;
typedef uint64_t XrVersion;
typedef uint64_t XrSystemId;
typedef struct XrInstance_T *XrInstance;
typedef void (*PFN_xrVoidFunction)(void);
typedef XrResult (*PFN_xrGetInstanceProcAddr)(XrInstance, const char *, PFN_xrVoidFunction *);

#define XR_MAKE_VERSION(major, minor, patch) \
    ((((uint64_t)(major) & 0xffffULL) << 48) | (((uint64_t)(minor) & 0xffffULL) << 32) | ((uint64_t)(patch) & 0xffffffffULL))
#define XR_VERSION_MAJOR(v) ((uint16_t)(((uint64_t)(v) >> 48) & 0xffffULL))

enum {
    XR_SUCCESS = 0,
    XR_ERROR_VALIDATION_FAILURE = -1,
    XR_ERROR_RUNTIME_FAILURE = -2,
    XR_ERROR_FUNCTION_UNSUPPORTED = -7,
    XR_ERROR_EXTENSION_NOT_PRESENT = -9,
    XR_ERROR_SIZE_INSUFFICIENT = -11,
    XR_ERROR_HANDLE_INVALID = -12,
    XR_ERROR_API_LAYER_NOT_PRESENT = -14,
    XR_ERROR_API_VERSION_UNSUPPORTED = -4,
    XR_ERROR_FORM_FACTOR_UNAVAILABLE = -35,
};
enum { XR_TYPE_EXTENSION_PROPERTIES = 2, XR_TYPE_INSTANCE_CREATE_INFO = 3,
       XR_TYPE_SYSTEM_GET_INFO = 4, XR_TYPE_INSTANCE_PROPERTIES = 32 };
enum { XR_LOADER_INTERFACE_STRUCT_LOADER_INFO = 1, XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST = 3 };

typedef struct { int32_t type; const void *next; } XrBaseHeader;
typedef struct {
    char applicationName[128]; uint32_t applicationVersion;
    char engineName[128]; uint32_t engineVersion; XrVersion apiVersion;
} XrApplicationInfo;
typedef struct {
    int32_t type; const void *next; uint64_t createFlags; XrApplicationInfo applicationInfo;
    uint32_t enabledApiLayerCount; const char *const *enabledApiLayerNames;
    uint32_t enabledExtensionCount; const char *const *enabledExtensionNames;
} XrInstanceCreateInfo;
typedef struct { int32_t type; void *next; char extensionName[128]; uint32_t extensionVersion; } XrExtensionProperties;
typedef struct { int32_t type; void *next; XrVersion runtimeVersion; char runtimeName[128]; } XrInstanceProperties;
typedef struct { int32_t type; const void *next; int32_t formFactor; } XrSystemGetInfo;
typedef struct {
    int32_t structType; uint32_t structVersion; size_t structSize;
    uint32_t minInterfaceVersion; uint32_t maxInterfaceVersion;
    XrVersion minApiVersion; XrVersion maxApiVersion;
} XrNegotiateLoaderInfo;
typedef struct {
    int32_t structType; uint32_t structVersion; size_t structSize;
    uint32_t runtimeInterfaceVersion; XrVersion runtimeApiVersion;
    PFN_xrGetInstanceProcAddr getInstanceProcAddr;
} XrNegotiateRuntimeRequest;

#define RUNTIME_NAME "surgplan headless test runtime"
static const char *const EXTENSIONS[] = {"XR_KHR_opengl_enable"};
struct XrInstance_T { uint32_t magic; };
#define INSTANCE_MAGIC 0x5852494eu

static int valid(XrInstance instance) { return instance && instance->magic == INSTANCE_MAGIC; }

static XrResult enumerate_extensions(const char *layer, uint32_t capacity, uint32_t *count,
                                     XrExtensionProperties *properties) {
    if (layer) return XR_ERROR_API_LAYER_NOT_PRESENT;
    if (!count) return XR_ERROR_VALIDATION_FAILURE;
    *count = 1;
    if (capacity == 0) return XR_SUCCESS;
    if (capacity < 1) return XR_ERROR_SIZE_INSUFFICIENT;
    if (properties[0].type != XR_TYPE_EXTENSION_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
    snprintf(properties[0].extensionName, 128, "%s", EXTENSIONS[0]);
    properties[0].extensionVersion = 10;
    return XR_SUCCESS;
}

static XrResult create_instance(const XrInstanceCreateInfo *info, XrInstance *instance) {
    if (!info || !instance || info->type != XR_TYPE_INSTANCE_CREATE_INFO) return XR_ERROR_VALIDATION_FAILURE;
    if (XR_VERSION_MAJOR(info->applicationInfo.apiVersion) != 1) return XR_ERROR_API_VERSION_UNSUPPORTED;
    for (uint32_t i = 0; i < info->enabledExtensionCount; ++i)
        if (strcmp(info->enabledExtensionNames[i], EXTENSIONS[0]) != 0) return XR_ERROR_EXTENSION_NOT_PRESENT;
    struct XrInstance_T *created = calloc(1, sizeof *created);
    if (!created) return XR_ERROR_RUNTIME_FAILURE;
    created->magic = INSTANCE_MAGIC;
    *instance = created;
    return XR_SUCCESS;
}

static XrResult destroy_instance(XrInstance instance) {
    if (!valid(instance)) return XR_ERROR_HANDLE_INVALID;
    instance->magic = 0;
    free(instance);
    return XR_SUCCESS;
}

static XrResult instance_properties(XrInstance instance, XrInstanceProperties *properties) {
    if (!valid(instance)) return XR_ERROR_HANDLE_INVALID;
    if (!properties || properties->type != XR_TYPE_INSTANCE_PROPERTIES) return XR_ERROR_VALIDATION_FAILURE;
    properties->runtimeVersion = XR_MAKE_VERSION(0, 1, 0);
    snprintf(properties->runtimeName, 128, "%s", RUNTIME_NAME);
    return XR_SUCCESS;
}

static XrResult get_system(XrInstance instance, const XrSystemGetInfo *info, XrSystemId *system) {
    if (!valid(instance)) return XR_ERROR_HANDLE_INVALID;
    if (!info || !system || info->type != XR_TYPE_SYSTEM_GET_INFO) return XR_ERROR_VALIDATION_FAILURE;
    const char *no_hmd = getenv("SURGPLAN_XR_TEST_NO_HMD");
    if (info->formFactor != 1 || (no_hmd && strcmp(no_hmd, "1") == 0)) return XR_ERROR_FORM_FACTOR_UNAVAILABLE;
    *system = 1;
    return XR_SUCCESS;
}

static XrResult result_to_string(XrInstance instance, XrResult value, char buffer[64]) {
    if (!valid(instance)) return XR_ERROR_HANDLE_INVALID;
    snprintf(buffer, 64, value == XR_SUCCESS ? "XR_SUCCESS" : "XR_RESULT_%d", (int)value);
    return XR_SUCCESS;
}

static XrResult structure_type_to_string(XrInstance instance, int32_t value, char buffer[64]) {
    if (!valid(instance)) return XR_ERROR_HANDLE_INVALID;
    snprintf(buffer, 64, "XR_STRUCTURE_TYPE_%d", (int)value);
    return XR_SUCCESS;
}

static XrResult get_instance_proc_addr(XrInstance instance, const char *name, PFN_xrVoidFunction *function) {
    if (!name || !function) return XR_ERROR_VALIDATION_FAILURE;
    *function = NULL;
    static const struct { const char *name; PFN_xrVoidFunction fn; int global; } table[] = {
        {"xrGetInstanceProcAddr", (PFN_xrVoidFunction)get_instance_proc_addr, 1},
        {"xrEnumerateInstanceExtensionProperties", (PFN_xrVoidFunction)enumerate_extensions, 1},
        {"xrCreateInstance", (PFN_xrVoidFunction)create_instance, 1},
        {"xrDestroyInstance", (PFN_xrVoidFunction)destroy_instance, 0},
        {"xrGetInstanceProperties", (PFN_xrVoidFunction)instance_properties, 0},
        {"xrGetSystem", (PFN_xrVoidFunction)get_system, 0},
        {"xrResultToString", (PFN_xrVoidFunction)result_to_string, 0},
        {"xrStructureTypeToString", (PFN_xrVoidFunction)structure_type_to_string, 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; ++i) {
        if (strcmp(name, table[i].name) == 0) {
            if (!instance && !table[i].global) return XR_ERROR_HANDLE_INVALID;
            *function = table[i].fn;
            return XR_SUCCESS;
        }
    }
    return XR_ERROR_FUNCTION_UNSUPPORTED;
}

__attribute__((visibility("default"))) XrResult xrNegotiateLoaderRuntimeInterface(
    const XrNegotiateLoaderInfo *loader, XrNegotiateRuntimeRequest *request) {
    if (!loader || !request || loader->structType != XR_LOADER_INTERFACE_STRUCT_LOADER_INFO ||
        request->structType != XR_LOADER_INTERFACE_STRUCT_RUNTIME_REQUEST ||
        loader->minInterfaceVersion > 1 || loader->maxInterfaceVersion < 1)
        return XR_ERROR_RUNTIME_FAILURE;
    request->runtimeInterfaceVersion = 1;
    request->runtimeApiVersion = XR_MAKE_VERSION(1, 0, 0);
    request->getInstanceProcAddr = get_instance_proc_addr;
    return XR_SUCCESS;
}
